'use strict';
// The npm packages of the manifest checks (package.json and package-lock.json
// next to manifests.test.js): where they live and whether they are installed.
//
// They are installed by the project's install step, `scripts/deps.sh test`, which
// runs `node tests/delivery/lib/npm.js install`; the test itself never reaches
// the registry. The directory is SYNCGATE_NPM_DIR, else
// /var/cache/syncgate-delivery-npm as root, else
// ${XDG_CACHE_HOME:-~/.cache}/syncgate-delivery-npm: outside the source tree and
// the build directories, so every build (the ASan one too) shares one install.

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const DELIVERY = path.join(__dirname, '..');

function npmDir() {
    if (process.env.SYNCGATE_NPM_DIR) return path.resolve(process.env.SYNCGATE_NPM_DIR);
    if (process.getuid && process.getuid() === 0) return '/var/cache/syncgate-delivery-npm';
    return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'),
        'syncgate-delivery-npm');
}

function lockFiles() {
    return [fs.readFileSync(path.join(DELIVERY, 'package.json')),
        fs.readFileSync(path.join(DELIVERY, 'package-lock.json'))];
}

// The stamp written after a complete install: the hash of package.json and the lock.
function wanted() {
    const h = crypto.createHash('sha256');
    for (const part of lockFiles()) h.update(part);
    return h.digest('hex');
}

function stampPath(dir) {
    return path.join(dir, 'node_modules', '.syncgate-delivery-stamp');
}

// null when the locked packages are installed in dir, else why not (one line).
function missing(dir = npmDir()) {
    const stamp = stampPath(dir);
    if (!fs.existsSync(stamp)) return `the npm packages are not installed in ${dir}`;
    if (fs.readFileSync(stamp, 'utf8') !== wanted())
        return `the npm packages in ${dir} do not match package-lock.json`;
    return null;
}

// Install the locked packages into dir unless they are there; throws with one line.
function install(dir = npmDir()) {
    if (!missing(dir)) return false;
    const [pkg, lock] = lockFiles();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), pkg);
    fs.writeFileSync(path.join(dir, 'package-lock.json'), lock);
    // Bounded: a registry that cannot be reached fails in about a minute.
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error',
        '--fetch-retries=1', '--fetch-retry-mintimeout=2000', '--fetch-retry-maxtimeout=10000',
        '--fetch-timeout=60000'], { cwd: dir, stdio: ['ignore', 2, 2], timeout: 600e3 });
    if (r.status !== 0)
        throw new Error(`npm ci in ${dir} failed (${r.error ? r.error.message : `exit ${r.status}`})`);
    fs.writeFileSync(stampPath(dir), wanted());
    return true;
}

module.exports = { npmDir, missing, install };

if (require.main === module) {
    if (process.argv[2] !== 'install') {
        console.error('usage: node tests/delivery/lib/npm.js install');
        process.exit(2);
    }
    try {
        if (install()) console.error(`npm packages of the manifest checks installed in ${npmDir()}`);
    } catch (e) {
        console.error(e.message);
        process.exit(1);
    }
}
