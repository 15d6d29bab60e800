'use strict';
// Strict field checking against the TypeScript declarations of the
// kubernetes-models packages.
//
// Their validate() functions are compiled JSON schemas without
// additionalProperties, so a misspelt field ("readOnlyRootFileSystem") passes
// them, while the API server (strict field validation) rejects it. The .d.ts
// files name every field, so this module reads the interface of a model from
// its declaration file and reports every field of an object that the
// interface does not declare, recursively. Type forms it does not understand
// are accepted, never guessed at.

const fs = require('fs');
const path = require('path');

// ---- a tokenizer and parser for the small part of TypeScript the models use ----

function tokenize(src) {
    const toks = [];
    let i = 0;
    while (i < src.length) {
        const c = src[i];
        if (/\s/.test(c)) { i++; continue; }
        if (src.startsWith('/*', i)) { i = src.indexOf('*/', i + 2); i = i < 0 ? src.length : i + 2; continue; }
        if (src.startsWith('//', i)) { i = src.indexOf('\n', i); if (i < 0) i = src.length; continue; }
        if (c === '"' || c === "'") {
            let j = i + 1;
            while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
            toks.push({ t: 'str', v: JSON.parse('"' + src.slice(i + 1, j).replace(/\\'/g, "'") + '"') });
            i = j + 1;
            continue;
        }
        const m = /^[A-Za-z_$][\w$]*/.exec(src.slice(i, i + 200));
        if (m) { toks.push({ t: 'id', v: m[0] }); i += m[0].length; continue; }
        const n = /^-?\d+(\.\d+)?/.exec(src.slice(i, i + 50));
        if (n) { toks.push({ t: 'num', v: n[0] }); i += n[0].length; continue; }
        toks.push({ t: 'p', v: c });
        i++;
    }
    return toks;
}

class Parser {
    constructor(toks) { this.toks = toks; this.i = 0; }
    peek(k = 0) { return this.toks[this.i + k]; }
    next() { return this.toks[this.i++]; }
    is(v, k = 0) { const t = this.peek(k); return t && t.t !== 'str' && t.v === v; }
    expect(v) {
        const t = this.next();
        if (!t || t.v !== v) throw new Error(`expected ${v}, got ${t && t.v}`);
        return t;
    }

    // type := ['|'] primary ('|' primary)*
    type() {
        if (this.is('|')) this.next();
        const parts = [this.postfix()];
        while (this.is('|')) { this.next(); parts.push(this.postfix()); }
        return parts.length === 1 ? parts[0] : { kind: 'union', parts };
    }

    postfix() {
        let ty = this.primary();
        while (this.is('[') && this.is(']', 1)) { this.next(); this.next(); ty = { kind: 'array', of: ty }; }
        return ty;
    }

    primary() {
        const t = this.next();
        if (!t) throw new Error('unexpected end of type');
        if (t.t === 'str' || t.t === 'num') return { kind: 'literal', value: t.v };
        if (t.v === '{') return this.objectBody();
        if (t.v === '(') { const ty = this.type(); this.expect(')'); return ty; }
        if (t.t === 'id') {
            if (t.v === 'Array' && this.is('<')) {
                this.next();
                const of = this.type();
                this.expect('>');
                return { kind: 'array', of };
            }
            if (['string', 'number', 'boolean', 'any', 'unknown', 'object', 'null', 'true',
                'false', 'undefined'].includes(t.v)) return { kind: 'prim', name: t.v };
            let name = t.v;
            while (this.is('.')) { this.next(); name += '.' + this.next().v; }
            if (this.is('<')) this.skipBalanced('<', '>');
            // Indexed access (IJob["kind"]) and the like: accept anything.
            if (this.is('[') && !this.is(']', 1)) { this.skipBalanced('[', ']'); return { kind: 'any' }; }
            return { kind: 'ref', name };
        }
        throw new Error(`unexpected token ${t.v}`);
    }

    skipBalanced(open, close) {
        let depth = 0;
        do {
            const t = this.next();
            if (!t) throw new Error('unbalanced ' + open);
            if (t.t !== 'str' && t.v === open) depth++;
            else if (t.t !== 'str' && t.v === close) depth--;
        } while (depth > 0);
    }

    // after '{': members until '}'
    objectBody() {
        const props = new Map();
        let index = null;
        while (!this.is('}')) {
            if (this.is('[')) {
                // [key: string]: T
                this.next(); this.next(); this.expect(':'); this.next(); this.expect(']');
                this.expect(':');
                index = this.type();
            } else {
                const nameTok = this.next();
                let optional = false;
                if (this.is('?')) { this.next(); optional = true; }
                if (this.is('(')) { // a method: skip to the end of the member
                    while (!this.is(';') && !this.is('}')) this.next();
                } else {
                    this.expect(':');
                    props.set(nameTok.v, { type: this.type(), optional });
                }
            }
            if (this.is(';') || this.is(',')) this.next();
        }
        this.next();
        return { kind: 'object', props, index };
    }
}

// ---- declaration files ----

const fileCache = new Map();

// Parse one .d.ts: its imports, interfaces, type aliases and export aliases.
function loadDecl(file) {
    if (fileCache.has(file)) return fileCache.get(file);
    const p = new Parser(tokenize(fs.readFileSync(file, 'utf8')));
    const decl = { file, imports: new Map(), types: new Map(), aliases: new Map() };
    while (p.peek()) {
        if (p.is('import') && p.is('{', 1)) {
            p.next(); p.next();
            const names = [];
            while (!p.is('}')) {
                const a = p.next().v;
                let b = a;
                if (p.is('as')) { p.next(); b = p.next().v; }
                names.push([a, b]);
                if (p.is(',')) p.next();
            }
            p.next();
            p.expect('from');
            const spec = p.next().v;
            for (const [a, b] of names) decl.imports.set(b, { spec, name: a });
        } else if (p.is('export') && p.is('interface', 1)) {
            p.next(); p.next();
            const name = p.next().v;
            if (p.is('<')) p.skipBalanced('<', '>');
            if (p.is('extends')) { while (!p.is('{')) p.next(); }
            p.expect('{');
            decl.types.set(name, p.objectBody());
        } else if (p.is('export') && (p.is('type', 1) || (p.is('declare', 1) && p.is('type', 2)))) {
            p.next();
            if (p.is('declare')) p.next();
            p.next();
            const name = p.next().v;
            if (p.is('<')) p.skipBalanced('<', '>');
            p.expect('=');
            decl.types.set(name, p.type());
        } else if (p.is('export') && p.is('{', 1)) {
            p.next(); p.next();
            while (!p.is('}')) {
                const a = p.next().v;
                let b = a;
                if (p.is('as')) { p.next(); b = p.next().v; }
                decl.aliases.set(b, a);
                if (p.is(',')) p.next();
            }
            p.next();
        } else {
            p.next();
        }
    }
    fileCache.set(file, decl);
    return decl;
}

function withDts(base) {
    for (const f of [base + '.d.ts', path.join(base, 'index.d.ts')]) if (fs.existsSync(f)) return f;
    return null;
}

// Node's own resolution follows package "exports", which hide the .d.ts files:
// find the package directory the way node_modules nesting works instead.
function resolveModule(spec, fromFile) {
    if (spec.startsWith('.')) return withDts(path.resolve(path.dirname(fromFile), spec));
    const parts = spec.split('/');
    const n = spec.startsWith('@') ? 2 : 1;
    const pkg = parts.slice(0, n).join('/');
    const sub = parts.slice(n).join('/');
    for (let dir = path.dirname(fromFile); ; dir = path.dirname(dir)) {
        const root = path.join(dir, 'node_modules', pkg);
        if (fs.existsSync(path.join(root, 'package.json'))) return withDts(path.join(root, sub || 'index'));
        if (path.dirname(dir) === dir) return null;
    }
}

// The type named name as seen from decl: { ty, decl } or null.
function lookup(name, decl, depth = 0) {
    if (depth > 8) return null;
    if (decl.types.has(name)) return { ty: decl.types.get(name), decl };
    if (decl.aliases.has(name)) return lookup(decl.aliases.get(name), decl, depth + 1);
    const imp = decl.imports.get(name);
    if (imp) {
        const f = resolveModule(imp.spec, decl.file);
        if (!f) return null;
        return lookup(imp.name, loadDecl(f), depth + 1);
    }
    return null;
}

// ---- checking ----

function isPlainObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }

function check(value, ty, decl, where, errors, depth = 0) {
    if (depth > 64 || value === null || value === undefined) return;
    switch (ty.kind) {
    case 'ref': {
        const r = lookup(ty.name, decl);
        if (r) check(value, r.ty, r.decl, where, errors, depth + 1);
        return;
    }
    case 'object':
        if (!isPlainObject(value)) return;
        for (const [k, v] of Object.entries(value)) {
            const prop = ty.props.get(k);
            if (prop) check(v, prop.type, decl, `${where}.${k}`, errors, depth + 1);
            else if (ty.index) check(v, ty.index, decl, `${where}.${k}`, errors, depth + 1);
            else errors.push(`${where}.${k}: unknown field`);
        }
        return;
    case 'array':
        if (Array.isArray(value)) value.forEach((v, i) => check(v, ty.of, decl, `${where}[${i}]`, errors, depth + 1));
        return;
    case 'union': {
        // Only a union with exactly one structured member tells what an object must be.
        const structured = ty.parts.filter((p) => p.kind === 'object' || p.kind === 'ref' || p.kind === 'array');
        if (structured.length === 1) check(value, structured[0], decl, where, errors, depth + 1);
        return;
    }
    default:
        return;
    }
}

// Unknown fields of obj according to interface ifaceName declared in dtsFile.
function strictErrors(obj, dtsFile, ifaceName) {
    const decl = loadDecl(dtsFile);
    const r = lookup(ifaceName, decl);
    if (!r) return [`no interface ${ifaceName} in ${dtsFile}`];
    const errors = [];
    check(obj, r.ty, r.decl, '', errors);
    return errors.map((e) => e.replace(/^\./, ''));
}

module.exports = { strictErrors, resolveModule };
