'use strict';
// Just enough PromQL and LogQL reading to tell which series, labels and log
// fields a dashboard or analysis query refers to. Grafana variables and Argo
// template arguments only ever appear inside strings and range brackets here,
// which both readers skip.

const PROMQL_FUNCTIONS = new Set([
    // aggregations
    'sum', 'avg', 'min', 'max', 'count', 'group', 'stddev', 'stdvar', 'topk', 'bottomk',
    'quantile', 'count_values',
    // functions
    'abs', 'absent', 'absent_over_time', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min',
    'delta', 'deriv', 'exp', 'floor', 'histogram_quantile', 'histogram_count', 'histogram_sum',
    'histogram_fraction', 'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'ln',
    'log2', 'log10', 'rate', 'resets', 'round', 'scalar', 'sort', 'sort_desc', 'sqrt', 'time',
    'timestamp', 'vector', 'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time',
    'count_over_time', 'quantile_over_time', 'stddev_over_time', 'last_over_time',
    'present_over_time',
]);
const PROMQL_GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan', 'atan2']);

function lexPromQL(expr) {
    const toks = [];
    let i = 0;
    while (i < expr.length) {
        const c = expr[i];
        if (/\s/.test(c)) { i++; continue; }
        if (c === '#') { while (i < expr.length && expr[i] !== '\n') i++; continue; }
        if (c === '"' || c === "'" || c === '`') {
            let j = i + 1;
            while (j < expr.length && expr[j] !== c) j += (expr[j] === '\\' && c !== '`') ? 2 : 1;
            if (j >= expr.length) throw new Error(`unterminated string in ${expr}`);
            toks.push({ t: 'str', v: expr.slice(i + 1, j) });
            i = j + 1;
            continue;
        }
        if (c === '[') { // range or subquery: durations and variables only
            const j = expr.indexOf(']', i);
            if (j < 0) throw new Error(`unterminated [ in ${expr}`);
            toks.push({ t: 'range', v: expr.slice(i + 1, j) });
            i = j + 1;
            continue;
        }
        const id = /^[A-Za-z_:][\w:]*/.exec(expr.slice(i));
        if (id) { toks.push({ t: 'id', v: id[0] }); i += id[0].length; continue; }
        const num = /^(\d+(\.\d+)?(e[+-]?\d+)?|0x[0-9a-f]+)/i.exec(expr.slice(i));
        if (num) { toks.push({ t: 'num', v: num[0] }); i += num[0].length; continue; }
        const op = /^(==|!=|=~|!~|>=|<=|[-+*/%^<>=(){},])/.exec(expr.slice(i));
        if (op) { toks.push({ t: 'p', v: op[0] }); i += op[0].length; continue; }
        throw new Error(`unexpected character ${JSON.stringify(c)} in ${expr}`);
    }
    return toks;
}

// { metrics: Set, labels: Set, errors: [] } for one PromQL expression.
function readPromQL(expr) {
    const out = { metrics: new Set(), labels: new Set(), errors: [] };
    let toks;
    try {
        toks = lexPromQL(expr);
    } catch (e) {
        out.errors.push(e.message);
        return out;
    }
    let depth = 0;
    for (let i = 0; i < toks.length; i++) {
        const t = toks[i];
        if (t.t === 'p' && t.v === '(') depth++;
        if (t.t === 'p' && t.v === ')') depth--;
        if (t.t === 'p' && t.v === '{') {
            // label matchers: name op "value" [, ...]
            for (i++; i < toks.length && !(toks[i].t === 'p' && toks[i].v === '}'); i++) {
                const n = toks[i];
                if (n.t === 'p' && n.v === ',') continue;
                const op = toks[i + 1], val = toks[i + 2];
                if (n.t !== 'id' || !op || !['=', '!=', '=~', '!~'].includes(op.v) || !val || val.t !== 'str') {
                    out.errors.push(`bad label matcher near ${JSON.stringify(n.v)} in ${expr}`);
                    break;
                }
                if (n.v === '__name__') out.metrics.add(val.v);
                else out.labels.add(n.v);
                i += 2;
            }
            continue;
        }
        if (t.t !== 'id') continue;
        const next = toks[i + 1];
        if (PROMQL_GROUPING.has(t.v)) {
            if (next && next.t === 'p' && next.v === '(') {
                for (i += 2; i < toks.length && !(toks[i].t === 'p' && toks[i].v === ')'); i++) {
                    if (toks[i].t === 'id') out.labels.add(toks[i].v);
                }
            }
            continue;
        }
        if (next && next.t === 'p' && next.v === '(') {
            if (!PROMQL_FUNCTIONS.has(t.v)) out.errors.push(`unknown function ${t.v}() in ${expr}`);
            continue;
        }
        // an aggregation with its grouping first: sum by (x) (...)
        if (next && next.t === 'id' && PROMQL_GROUPING.has(next.v) && PROMQL_FUNCTIONS.has(t.v)) continue;
        if (PROMQL_KEYWORDS.has(t.v.toLowerCase())) continue;
        out.metrics.add(t.v);
    }
    if (depth !== 0) out.errors.push(`unbalanced parentheses in ${expr}`);
    if (out.metrics.size === 0) out.errors.push(`no series in ${expr}`);
    return out;
}

// LogQL: { selector: Map(label -> value), fields: Set (log fields used after a
// json parser), values: Map(field -> [matched values]), errors: [] }.
function readLogQL(expr) {
    const out = { selector: new Map(), fields: new Set(), values: new Map(), errors: [], json: false };
    const m = /^\s*\{([^}]*)\}(.*)$/s.exec(expr);
    if (!m) {
        out.errors.push(`no stream selector in ${expr}`);
        return out;
    }
    for (const part of m[1].split(',')) {
        const lm = /^\s*([A-Za-z_]\w*)\s*(=|!=|=~|!~)\s*"([^"]*)"\s*$/.exec(part);
        if (!lm) out.errors.push(`bad stream matcher ${part}`);
        else out.selector.set(lm[1], lm[3]);
    }
    // Split the pipeline on | outside strings.
    const stages = [];
    let cur = '', q = null;
    for (const ch of m[2]) {
        if (q) {
            cur += ch;
            if (ch === q) q = null;
        } else if (ch === '"' || ch === '`') {
            q = ch;
            cur += ch;
        } else if (ch === '|') {
            stages.push(cur);
            cur = '';
        } else {
            cur += ch;
        }
    }
    stages.push(cur);
    if (stages[0].trim() !== '') out.errors.push(`text before the first | in ${expr}`);
    for (const raw of stages.slice(1)) {
        const s = raw.trim();
        if (s === 'json') { out.json = true; continue; }
        if (s.startsWith('=') || s.startsWith('~')) continue; // line filters |= |~
        const lf = /^line_format\s+(["`])(.*)\1$/s.exec(s);
        if (lf) {
            for (const f of lf[2].matchAll(/\.([A-Za-z_]\w*)/g)) out.fields.add(f[1]);
            continue;
        }
        const flt = /^([A-Za-z_]\w*)\s*(=|!=|=~|!~|==|>=|<=|>|<)\s*("([^"]*)"|[\d.]+)$/.exec(s);
        if (flt) {
            if (!out.json) out.errors.push(`filter on ${flt[1]} before | json in ${expr}`);
            out.fields.add(flt[1]);
            const vals = out.values.get(flt[1]) || [];
            vals.push(flt[4] !== undefined ? flt[4] : flt[3]);
            out.values.set(flt[1], vals);
            continue;
        }
        out.errors.push(`unsupported pipeline stage "${s}" in ${expr}`);
    }
    return out;
}

module.exports = { readPromQL, readLogQL };
