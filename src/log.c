/* log: to be written */
