/* threshold: to be written */
