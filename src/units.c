/* units: to be written */
