/* hist: to be written */
