/* smoke: to be written */
