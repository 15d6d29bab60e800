/* Unit tests for jsonpath: path parsing, JSON validation, lookups, text of values. */
#include <errno.h>
#include <string.h>

#include "syncgate/jsonpath.h"
#include "tap.h"

static const char doc[] =
    " {\"id\": \"o17\", \"status\":\"PENDING\", \"quantity\": 2, \"price\": -1.5e2,"
    " \"ok\": true, \"none\": null, \"items\": [ {\"id\": 1}, {\"id\": 2, \"tags\": [\"a\",\"b\"]} ],"
    " \"content-type\": \"x\", \"we\\\"ird\": \"q\", \"esc\": \"a\\u00e9\\n\\ud83d\\ude00\","
    " \"nested\": {\"deep\": {\"er\": [[0, [42]]]}}} ";

static void find(const char *path, const char *want, enum json_type type)
{
    struct jpath p;
    struct json_span v;
    char err[256], out[256];
    int rc = jp_parse(&p, path, err, sizeof(err));
    if (rc == 0)
        rc = jp_find(&p, doc, strlen(doc), &v);
    ssize_t n = rc == 0 ? json_text(&v, out, sizeof(out)) : -1;
    ok(rc == 0 && n >= 0 && strcmp(out, want) == 0 && v.type == type, "%s found (rc %d, %zd bytes)",
       path, rc, n);
    jp_clear(&p);
}

static void missing(const char *path)
{
    struct jpath p;
    struct json_span v;
    char err[256] = "";
    int rc = jp_parse(&p, path, err, sizeof(err));
    ok(rc == 0 && jp_find(&p, doc, strlen(doc), &v) == -ENOENT, "%s is not there", path);
    jp_clear(&p);
}

static void badpath(const char *path)
{
    struct jpath p;
    char err[256] = "";
    ok(jp_parse(&p, path, err, sizeof(err)) == -EINVAL && err[0], "path \"%s\" refused: %s", path,
       err);
}

static void valid(const char *text, bool want)
{
    char shown[128]; /* control characters as '?': a raw line break would break TAP */
    size_t n = 0;
    for (; text[n] && n < sizeof(shown) - 1; n++)
        shown[n] = (unsigned char)text[n] < 0x20 ? '?' : text[n];
    shown[n] = 0;
    ok(json_valid(text, strlen(text)) == want, "%s JSON: %s", want ? "valid" : "invalid", shown);
}

int main(void)
{
    valid(doc, true);
    find("$.id", "o17", JSON_STRING);
    find("$.status", "PENDING", JSON_STRING);
    find("$.quantity", "2", JSON_NUMBER);
    find("$.price", "-1.5e2", JSON_NUMBER);
    find("$.ok", "true", JSON_TRUE);
    find("$.none", "null", JSON_NULL);
    find("$.items[1].id", "2", JSON_NUMBER);
    find("$.items[-1].tags[-2]", "a", JSON_STRING);
    find("$.items[0]", "{\"id\": 1}", JSON_OBJECT);
    find("$['content-type']", "x", JSON_STRING);
    find("$.content-type", "x", JSON_STRING);
    find("$[\"we\\\"ird\"]", "q", JSON_STRING);
    find("$.esc", "a\xc3\xa9\n\xf0\x9f\x98\x80", JSON_STRING);
    find("$.nested.deep.er[0][1][0]", "42", JSON_NUMBER);
    missing("$.nope");
    missing("$.items[2]");
    missing("$.items[-3]");
    missing("$.id.x");
    missing("$.items.id");
    missing("$[0]");
    {
        struct jpath p;
        struct json_span v;
        char err[64] = "";
        ok(jp_parse(&p, "$", err, sizeof(err)) == 0 && jp_find(&p, "[1, 2]", 6, &v) == 0 &&
               v.type == JSON_ARRAY && v.len == 6,
           "$ is the whole document");
        jp_clear(&p);
        char small[4];
        ok(jp_parse(&p, "$.status", err, sizeof(err)) == 0 &&
               jp_find(&p, doc, strlen(doc), &v) == 0 &&
               json_text(&v, small, sizeof(small)) == -ENOSPC,
           "json_text: -ENOSPC when the value does not fit");
        jp_clear(&p);
    }

    badpath("");
    badpath("id");
    badpath("$.");
    badpath("$..id");
    badpath("$.a b");
    badpath("$[");
    badpath("$[x]");
    badpath("$['a'");
    badpath("$[-0]");
    badpath("$[*]");
    badpath("$.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q");

    valid("{}", true);
    valid("[]", true);
    valid("0", true);
    valid("\"x\"", true);
    valid("", false);
    valid("{", false);
    valid("{\"a\" 1}", false);
    valid("{\"a\":1,}", false);
    valid("[1,]", false);
    valid("01", false);
    valid("1.", false);
    valid("-", false);
    valid("tru", false);
    valid("\"\\x\"", false);
    valid("\"\\u12g4\"", false);
    valid("\"a\nb\"", false);
    valid("\"\\ud83d\\ud00e\"", false); /* a high surrogate without its low half */
    valid("\"\\ude00\"", false);          /* a low surrogate alone */
    valid("\"\\ud83d\"", false);
    valid("\"\xff\"", false);
    valid("{} {}", false);
    valid("{'a':1}", false);
    {
        char deep[300];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        deep[200] = '\0';
        valid(deep, false); /* nesting beyond JSON_MAX_NESTING */
        memset(deep, '[', 60);
        memset(deep + 60, ']', 60);
        deep[120] = '\0';
        valid(deep, true);
    }
    return tap_done();
}
