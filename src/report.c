/* report: to be written */
