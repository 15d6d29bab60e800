/*
 * Fuzz target: journey data files (CSV or JSON). An accepted file has 1 to
 * DATA_MAX_COLS named, distinct columns and at least one row; every cell is
 * reachable and NUL-terminated; a refused one says why.
 */
#include <errno.h>

#include "fuzz.h"
#include "syncgate/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dataset ds;
    char err[256] = "";
    int rc = data_parse(&ds, (const char *)data, size, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
    if (rc) {
        FUZZ_CHECK(err[0], "no message");
        return 0;
    }
    FUZZ_CHECK(ds.ncols >= 1 && ds.ncols <= DATA_MAX_COLS && ds.nrows >= 1, "%zu cols %zu rows",
               ds.ncols, ds.nrows);
    for (size_t c = 0; c < ds.ncols; c++) {
        FUZZ_CHECK(*ds.cols[c], "column %zu has no name", c);
        FUZZ_CHECK(data_column(&ds, ds.cols[c], strlen(ds.cols[c])) == (int)c,
                   "column %zu not found by name", c);
    }
    size_t total = 0;
    for (size_t r = 0; r < ds.nrows + 1; r++)
        for (size_t c = 0; c < ds.ncols; c++)
            total += strlen(data_cell(&ds, r, c));
    (void)total;
    data_clear(&ds);
    return 0;
}
