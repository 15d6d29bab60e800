/*
 * data: the rows of a journey data file (`data: {products: {file: x.csv}}`).
 *
 * A data set is a table of strings: column names and rows of cells. It is
 * read from CSV with a header row (RFC 4180: quoted fields, "" inside quotes,
 * CRLF or LF line ends, a final line end optional) or from a JSON array of
 * objects (the first object's keys are the columns; every object must have
 * them; string values as they are, anything else as its JSON text). Rows are
 * handed out round-robin, one per iteration, by the journey runner.
 *
 * data_parse() is pure (a buffer in, a table out) and data_load() reads a
 * file with a size cap. Both are bounded: DATA_MAX_BYTES of input,
 * DATA_MAX_COLS columns, DATA_MAX_ROWS rows, DATA_MAX_CELL bytes per cell.
 */
#ifndef SYNCGATE_DATA_H
#define SYNCGATE_DATA_H

#include <stddef.h>

#define DATA_MAX_BYTES (16 * 1024 * 1024)
#define DATA_MAX_COLS 64
#define DATA_MAX_ROWS 1000000
#define DATA_MAX_CELL 4096

struct dataset {
    size_t ncols, nrows;
    char **cols;  /* ncols names */
    char **cells; /* nrows * ncols values, row-major; pointers into text */
    char *text;   /* the storage of every name and cell */
};

/*
 * Parse buf (len bytes) into ds: JSON when its first non-blank byte is '[',
 * else CSV. Returns 0, or -EINVAL with a one-line reason in err (naming the
 * row, 1-based as a person counts lines of the file), or -ENOMEM. On failure
 * ds holds nothing to free.
 */
int data_parse(struct dataset *ds, const char *buf, size_t len, char *err, size_t errlen);

/* Read path (a regular file of at most DATA_MAX_BYTES) and parse it; as data_parse. */
int data_load(struct dataset *ds, const char *path, char *err, size_t errlen);

/* Index of column name, or -1. */
int data_column(const struct dataset *ds, const char *name, size_t len);

/* Cell (row, col); row is taken modulo the row count. */
const char *data_cell(const struct dataset *ds, size_t row, size_t col);

void data_clear(struct dataset *ds);

#endif
