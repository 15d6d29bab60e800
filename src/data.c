/* data: CSV and JSON data files for journeys, as tables of strings. */
#include "syncgate/data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utf8.h"
#include "errbuf.h"

void data_clear(struct dataset *ds)
{
    free(ds->cols);
    free(ds->cells);
    free(ds->text);
    memset(ds, 0, sizeof(*ds));
}

/* Growing arrays of cell pointers (indices into text until the end: text may move). */
struct builder {
    size_t *cells; /* offsets into text */
    size_t n, cap;
    char *text;
    size_t tlen, tcap;
};

static int add_cell(struct builder *b, const char *s, size_t len)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        size_t *c = realloc(b->cells, nc * sizeof(*c));
        if (!c)
            return -ENOMEM;
        b->cells = c;
        b->cap = nc;
    }
    if (b->tlen + len + 1 > b->tcap) {
        size_t nc = b->tcap ? b->tcap : 1024;
        while (nc < b->tlen + len + 1)
            nc *= 2;
        char *t = realloc(b->text, nc);
        if (!t)
            return -ENOMEM;
        b->text = t;
        b->tcap = nc;
    }
    b->cells[b->n++] = b->tlen;
    memcpy(b->text + b->tlen, s, len);
    b->text[b->tlen + len] = '\0';
    b->tlen += len + 1;
    return 0;
}

/* Turn the builder (header cells first) into ds. */
static int finish(struct dataset *ds, struct builder *b, size_t ncols)
{
    ds->ncols = ncols;
    ds->nrows = ncols ? b->n / ncols - 1 : 0;
    ds->cols = malloc(ncols * sizeof(char *));
    ds->cells = malloc((ds->nrows && ncols ? ds->nrows * ncols : 1) * sizeof(char *));
    if (!ds->cols || !ds->cells) {
        free(b->cells);
        free(b->text);
        data_clear(ds);
        return -ENOMEM;
    }
    ds->text = b->text;
    for (size_t i = 0; i < ncols; i++)
        ds->cols[i] = ds->text + b->cells[i];
    for (size_t i = 0; i < ds->nrows * ncols; i++)
        ds->cells[i] = ds->text + b->cells[ncols + i];
    free(b->cells);
    return 0;
}

static int check_header(struct builder *b, size_t ncols, char *err, size_t errlen)
{
    if (ncols == 0)
        return errbuf_fail(err, errlen, "no columns");
    if (ncols > DATA_MAX_COLS)
        return errbuf_fail(err, errlen, "more than %d columns", DATA_MAX_COLS);
    for (size_t i = 0; i < ncols; i++) {
        const char *name = b->text + b->cells[i];
        if (!*name)
            return errbuf_fail(err, errlen, "column %zu has no name", i + 1);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(name, b->text + b->cells[j]))
                return errbuf_fail(err, errlen, "column \"%.64s\" appears twice", name);
    }
    return 0;
}

/* ---- CSV ---------------------------------------------------------------- */

static int parse_csv(struct dataset *ds, const char *buf, size_t len, char *err, size_t errlen)
{
    struct builder b = {0};
    char *cell = malloc(DATA_MAX_CELL + 1);
    size_t ncols = 0, line = 1, row_cells = 0, i = 0;
    int rc = 0;

    if (!cell)
        return -ENOMEM;
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
        i = 3; /* a UTF-8 byte order mark is not part of the first name */
    while (rc == 0 && i < len) {
        size_t cl = 0;
        size_t start_line = line;
        bool quoted = buf[i] == '"';
        if (quoted) {
            i++;
            for (;;) {
                if (i >= len) {
                    rc = errbuf_fail(err, errlen, "line %zu: a quoted field is never closed",
                                     start_line);
                    break;
                }
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') {
                        i++;
                    } else {
                        i++;
                        break;
                    }
                }
                if (buf[i] == '\n')
                    line++;
                if (cl == DATA_MAX_CELL) {
                    rc = errbuf_fail(err, errlen, "line %zu: a field longer than %d bytes",
                                     start_line, DATA_MAX_CELL);
                    break;
                }
                cell[cl++] = buf[i++];
            }
            if (rc == 0 && i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r')
                rc = errbuf_fail(err, errlen, "line %zu: text after a closing quote", line);
        } else {
            while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
                if (buf[i] == '"') {
                    rc = errbuf_fail(err, errlen, "line %zu: a quote inside an unquoted field",
                                     line);
                    break;
                }
                if (cl == DATA_MAX_CELL) {
                    rc = errbuf_fail(err, errlen, "line %zu: a field longer than %d bytes", line,
                                     DATA_MAX_CELL);
                    break;
                }
                cell[cl++] = buf[i++];
            }
        }
        if (rc)
            break;
        cell[cl] = '\0';
        for (size_t k = 0; k < cl; k++)
            if (cell[k] == '\0' || !utf8_seq_len((const unsigned char *)cell + k, cl - k)) {
                rc = errbuf_fail(err, errlen, "line %zu: a field that is not UTF-8 text",
                                 start_line);
                break;
            }
        if (rc || (rc = add_cell(&b, cell, cl)) < 0)
            break;
        row_cells++;
        if (i < len && buf[i] == ',') {
            i++;
            if (i == len || buf[i] == '\n' || buf[i] == '\r') {
                /* a trailing comma ends the row with one more, empty, field */
                if ((rc = add_cell(&b, "", 0)) < 0)
                    break;
                row_cells++;
            } else {
                continue;
            }
        }
        /* end of a row */
        if (i < len && buf[i] == '\r')
            i++;
        if (i < len && buf[i] == '\n')
            i++;
        if (ncols == 0) {
            ncols = row_cells;
            rc = check_header(&b, ncols, err, errlen);
        } else if (row_cells != ncols) {
            rc = errbuf_fail(err, errlen, "line %zu: %zu fields where the header has %zu",
                             start_line, row_cells, ncols);
        } else if (b.n / ncols - 1 > DATA_MAX_ROWS) {
            rc = errbuf_fail(err, errlen, "more than %d rows", DATA_MAX_ROWS);
        }
        row_cells = 0;
        line++;
        /* blank lines between rows are skipped */
        while (rc == 0 && i < len && (buf[i] == '\n' || buf[i] == '\r')) {
            if (buf[i] == '\n')
                line++;
            i++;
        }
    }
    free(cell);
    if (rc == 0 && ncols == 0)
        rc = errbuf_fail(err, errlen, "empty: a header row and at least one row are needed");
    if (rc == 0 && b.n == ncols)
        rc = errbuf_fail(err, errlen, "no rows after the header");
    if (rc < 0) {
        free(b.cells);
        free(b.text);
        return rc;
    }
    return finish(ds, &b, ncols);
}

/* ---- JSON --------------------------------------------------------------- */

static int json_cell(struct builder *b, const cJSON *v)
{
    if (cJSON_IsString(v))
        return add_cell(b, v->valuestring, strlen(v->valuestring));
    char *t = cJSON_PrintUnformatted(v);
    if (!t)
        return -ENOMEM;
    int rc = add_cell(b, t, strlen(t));
    free(t);
    return rc;
}

static int parse_json(struct dataset *ds, const char *buf, size_t len, char *err, size_t errlen)
{
    struct builder b = {0};
    cJSON *root = cJSON_ParseWithLength(buf, len);
    size_t ncols = 0, row = 0;
    int rc = 0;

    if (!root)
        return errbuf_fail(err, errlen, "not valid JSON (expected an array of objects)");
    if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) == 0) {
        cJSON_Delete(root);
        return errbuf_fail(err, errlen, "expected a non-empty JSON array of objects");
    }
    for (const cJSON *o = root->child; o && rc == 0; o = o->next, row++) {
        if (!cJSON_IsObject(o)) {
            rc = errbuf_fail(err, errlen, "element %zu is not an object", row + 1);
            break;
        }
        if (row == 0) {
            for (const cJSON *f = o->child; f && rc == 0; f = f->next, ncols++)
                rc = add_cell(&b, f->string, strlen(f->string));
            if (rc == 0)
                rc = check_header(&b, ncols, err, errlen);
        }
        if (row + 1 > DATA_MAX_ROWS)
            rc = errbuf_fail(err, errlen, "more than %d rows", DATA_MAX_ROWS);
        for (size_t c = 0; c < ncols && rc == 0; c++) {
            const char *name = b.text + b.cells[c];
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
            if (!v)
                rc = errbuf_fail(err, errlen, "element %zu has no \"%.64s\"", row + 1, name);
            else
                rc = json_cell(&b, v);
        }
    }
    cJSON_Delete(root);
    if (rc < 0) {
        free(b.cells);
        free(b.text);
        return rc;
    }
    return finish(ds, &b, ncols);
}

int data_parse(struct dataset *ds, const char *buf, size_t len, char *err, size_t errlen)
{
    size_t i = 0;
    memset(ds, 0, sizeof(*ds));
    if (len > DATA_MAX_BYTES)
        return errbuf_fail(err, errlen, "larger than %d bytes", DATA_MAX_BYTES);
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    if (i < len && buf[i] == '[')
        return parse_json(ds, buf, len, err, errlen);
    return parse_csv(ds, buf, len, err, errlen);
}

int data_load(struct dataset *ds, const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int rc;

    memset(ds, 0, sizeof(*ds));
    if (fd < 0)
        return errbuf_fail(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return errbuf_fail(err, errlen, "\"%s\" is not a regular file", path);
    }
    if (st.st_size > DATA_MAX_BYTES) {
        close(fd);
        return errbuf_fail(err, errlen, "\"%s\" is larger than %d bytes", path, DATA_MAX_BYTES);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    rc = data_parse(ds, buf, got, err, errlen);
    free(buf);
    return rc;
}

int data_column(const struct dataset *ds, const char *name, size_t len)
{
    for (size_t i = 0; i < ds->ncols; i++)
        if (strlen(ds->cols[i]) == len && !memcmp(ds->cols[i], name, len))
            return (int)i;
    return -1;
}

const char *data_cell(const struct dataset *ds, size_t row, size_t col)
{
    return ds->cells[(row % ds->nrows) * ds->ncols + col];
}
