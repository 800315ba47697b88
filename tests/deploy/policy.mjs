// policy.mjs — explaind's deployment conventions, checked across deploy/ (run by
// tests/test_deploy.c). Schema validity is validate.mjs's job; this checks that the
// manifests, the compose file and the nginx config agree with each other and with the
// rules in docs/deploy.md (docs/serving.md §7).
//
//   node tests/deploy/policy.mjs --k8s DIR [--compose FILE] [--nginx FILE] [--help-text FILE]
//
// --help-text is the output of `explaind --help`: every EXPLAIND_* variable the
// manifests set must be one the binary knows (explaind ignores unknown variables, so a
// misspelt one would silently not apply). Prints "ok   check" or "FAIL check: why" per
// check and "N checks, N failed"; exit status 0 only when all passed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.k8s) {
  console.error('usage: node policy.mjs --k8s DIR [--compose FILE] [--nginx FILE] [--help-text FILE]');
  process.exit(2);
}

let total = 0;
let failed = 0;
// One named check: fn returns a list of problems (empty = ok); a throw is a problem too.
function check(name, fn) {
  total++;
  let problems;
  try {
    problems = fn();
  } catch (e) {
    problems = [`${e.message}`];
  }
  if (problems.length) {
    failed++;
    console.log(`FAIL ${name}: ${problems.join('; ')}`);
  } else {
    console.log(`ok   ${name}`);
  }
}

// ---- explaind's settings: flag > variable > default (server/config.c) -----------------

const DEFAULT_MS = {'shutdown-delay': 0, 'drain-timeout': 30000, 'request-timeout': 30000};
function flagValue(argv, flag) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${flag}`) return argv[i + 1];
    if (argv[i].startsWith(`--${flag}=`)) return argv[i].slice(flag.length + 3);
  }
  return undefined;
}
function envName(flag) {
  return `EXPLAIND_${flag.toUpperCase().replace(/-/g, '_')}`;
}
// The effective value of a flag given the container args and its environment map.
function setting(argv, env, flag) {
  const v = flagValue(argv || [], flag) ?? env[envName(flag)];
  return v === undefined ? DEFAULT_MS[flag] : v;
}
function toBytes(s) {
  const m = /^(\d+)\s*([kKmMgG]?)(i?[bB])?$/.exec(String(s).trim());
  if (!m) throw new Error(`"${s}" is not a size`);
  return Number(m[1]) * 1024 ** ' kmg'.indexOf(m[2].toLowerCase() || ' ');
}
function toSeconds(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s).trim());
  if (!m) throw new Error(`"${s}" is not a duration`);
  return Number(m[1]) * {ms: 0.001, s: 1, m: 60, h: 3600}[m[2] || 's'];
}
const knownVars = args['help-text']
  ? new Set(fs.readFileSync(args['help-text'], 'utf8').match(/EXPLAIND_[A-Z0-9_]+/g) || [])
  : null;
function unknownVars(names, where) {
  if (!knownVars) return [];
  return names.filter((n) => n.startsWith('EXPLAIND_') && !knownVars.has(n))
    .map((n) => `${where}: ${n} is not a variable explaind knows (explaind --help)`);
}

// ---- Kubernetes ---------------------------------------------------------------------

const files = fs.readdirSync(args.k8s).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
const docs = files.flatMap((f) => yaml.loadAll(fs.readFileSync(path.join(args.k8s, f), 'utf8'))
  .filter(Boolean).map((d) => ({...d, _file: f})));
const one = (kind) => {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
};
const matches = (selector, labels) => Object.entries(selector || {}).every(([k, v]) => labels?.[k] === v);

check('kustomization lists every manifest', () => {
  const k = yaml.load(fs.readFileSync(path.join(args.k8s, 'kustomization.yaml'), 'utf8'));
  return files.filter((f) => !(k.resources || []).includes(f)).map((f) => `${f} is not in resources`);
});

check('every kind is there', () => ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget',
  'ConfigMap', 'PersistentVolumeClaim'].flatMap((k) => (docs.some((d) => d.kind === k) ? [] : [`no ${k}`])));

const dep = one('Deployment');
const pod = dep.spec.template.spec;
const ctr = pod.containers.find((c) => c.name === 'explaind') || pod.containers[0];
const cm = one('ConfigMap');
const env = {...cm.data};
for (const e of ctr.env || []) if (e.value !== undefined) env[e.name] = e.value;

check('probes: liveness /healthz, readiness and startup /readyz', () => {
  const p = [];
  if (ctr.livenessProbe?.httpGet?.path !== '/healthz') p.push('livenessProbe must GET /healthz (never the queue)');
  if (ctr.readinessProbe?.httpGet?.path !== '/readyz') p.push('readinessProbe must GET /readyz');
  if (ctr.startupProbe?.httpGet?.path !== '/readyz') p.push('startupProbe must GET /readyz (model loading)');
  return p;
});

check('threads: OPENBLAS_NUM_THREADS=1, EXPLAIND_WORKERS from requests.cpu', () => {
  const p = [];
  const e = Object.fromEntries((ctr.env || []).map((x) => [x.name, x]));
  if (e.OPENBLAS_NUM_THREADS?.value !== '1') p.push('env OPENBLAS_NUM_THREADS must be "1"');
  const ref = e.EXPLAIND_WORKERS?.valueFrom?.resourceFieldRef;
  if (ref?.resource !== 'requests.cpu' || String(ref?.divisor ?? '1') !== '1')
    p.push('env EXPLAIND_WORKERS must come from resourceFieldRef requests.cpu (divisor 1)');
  if (!ctr.resources?.requests?.cpu || !ctr.resources?.requests?.memory) p.push('requests.cpu and requests.memory are required');
  if (!ctr.resources?.limits?.memory) p.push('limits.memory is required');
  return p;
});

check('security: non-root numeric UID, read-only root, no capabilities, seccomp', () => {
  const p = [];
  const ps = pod.securityContext || {};
  const cs = ctr.securityContext || {};
  const uid = cs.runAsUser ?? ps.runAsUser;
  if ((cs.runAsNonRoot ?? ps.runAsNonRoot) !== true) p.push('runAsNonRoot must be true');
  if (!Number.isInteger(uid) || uid <= 0) p.push('runAsUser must be a numeric non-zero UID');
  if (cs.readOnlyRootFilesystem !== true) p.push('readOnlyRootFilesystem must be true');
  if (cs.allowPrivilegeEscalation !== false) p.push('allowPrivilegeEscalation must be false');
  if (!(cs.capabilities?.drop || []).includes('ALL')) p.push('capabilities.drop must include ALL');
  if ((cs.seccompProfile ?? ps.seccompProfile)?.type !== 'RuntimeDefault') p.push('seccompProfile must be RuntimeDefault');
  return p;
});

check('args: listen 0.0.0.0:8080, model dir /models, a shutdown delay', () => {
  const p = [];
  if (flagValue(ctr.args || [], 'listen') !== '0.0.0.0:8080') p.push('--listen 0.0.0.0:8080');
  if (flagValue(ctr.args || [], 'model-dir') !== '/models') p.push('--model-dir /models');
  if (!(Number(flagValue(ctr.args || [], 'shutdown-delay')) > 0)) p.push('--shutdown-delay > 0');
  return p;
});

check('termination: grace >= preStop + shutdown delay + drain, drain >= longest job', () => {
  const p = [];
  const pre = ctr.lifecycle?.preStop;
  let sleep = pre?.sleep?.seconds;
  if (sleep === undefined && pre?.exec?.command) {
    const c = pre.exec.command;
    if (/(^|\/)sleep$/.test(c[0])) sleep = Number(c[1]);
  }
  if (!(sleep > 0)) p.push('preStop must sleep (exec sleep N or sleep.seconds)');
  const delay = Number(setting(ctr.args, env, 'shutdown-delay')) / 1000;
  const drain = Number(setting(ctr.args, env, 'drain-timeout')) / 1000;
  const job = Number(setting(ctr.args, env, 'request-timeout')) / 1000;
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  if (grace < (sleep || 0) + delay + drain)
    p.push(`terminationGracePeriodSeconds ${grace} < preStop ${sleep} + delay ${delay} + drain ${drain}`);
  if (drain < job) p.push(`drain timeout ${drain} s < request timeout ${job} s`);
  return p;
});

check('models: /models read-only from a ReadOnlyMany claim', () => {
  const p = [];
  const mount = (ctr.volumeMounts || []).find((m) => m.mountPath === '/models');
  if (!mount) return ['nothing mounted at /models'];
  if (mount.readOnly !== true) p.push('the /models mount must be readOnly');
  const vol = (pod.volumes || []).find((v) => v.name === mount.name);
  const claim = vol?.persistentVolumeClaim?.claimName;
  const pvc = docs.find((d) => d.kind === 'PersistentVolumeClaim' && d.metadata.name === claim);
  if (!pvc) p.push(`volume ${mount.name} is not a claim defined here`);
  else if (!(pvc.spec.accessModes || []).includes('ReadOnlyMany')) p.push(`${claim} must be ReadOnlyMany`);
  return p;
});

check('references: ConfigMap, Service, HPA and PDB point at the Deployment', () => {
  const p = [];
  const labels = dep.spec.template.metadata.labels;
  if (!matches(dep.spec.selector.matchLabels, labels)) p.push('Deployment selector does not match its pods');
  for (const ef of ctr.envFrom || [])
    if (ef.configMapRef && ef.configMapRef.name !== cm.metadata.name) p.push(`envFrom ${ef.configMapRef.name} is not defined`);
  const svc = one('Service');
  if (!matches(svc.spec.selector, labels) || !Object.keys(svc.spec.selector || {}).length)
    p.push('Service selector does not match the pods');
  const ports = (ctr.ports || []).map((x) => x.name).concat((ctr.ports || []).map((x) => x.containerPort));
  for (const sp of svc.spec.ports || []) if (!ports.includes(sp.targetPort)) p.push(`Service targetPort ${sp.targetPort} is no container port`);
  const hpa = one('HorizontalPodAutoscaler');
  const t = hpa.spec.scaleTargetRef;
  if (t.kind !== 'Deployment' || t.name !== dep.metadata.name) p.push('HPA does not target the Deployment');
  if (hpa.spec.minReplicas < 2) p.push('HPA minReplicas < 2 leaves no replica during a disruption');
  if (dep.spec.replicas !== undefined) p.push('Deployment sets replicas: every apply would undo the HPA\'s scale');
  const pdb = one('PodDisruptionBudget');
  if (!matches(pdb.spec.selector?.matchLabels, labels)) p.push('PDB selector does not match the pods');
  return p;
});

check('settings: every EXPLAIND_* variable exists', () =>
  unknownVars(Object.keys(cm.data || {}).concat((ctr.env || []).map((e) => e.name)), 'k8s'));

// ---- compose and nginx ----------------------------------------------------------------

let compose = null;
if (args.compose) {
  compose = yaml.load(fs.readFileSync(args.compose, 'utf8'));
  const app = compose.services?.explaind || {};
  const cenv = app.environment || {};
  check('compose: replicas, healthcheck, threads, grace', () => {
    const p = [];
    if (!(app.deploy?.replicas >= 2)) p.push('deploy.replicas must be >= 2');
    const hc = (app.healthcheck?.test || []).join(' ');
    if (!/--healthcheck http:\/\/127\.0\.0\.1:8080\/healthz/.test(hc)) p.push('healthcheck must run explaind --healthcheck .../healthz');
    if (String(cenv.OPENBLAS_NUM_THREADS) !== '1') p.push('OPENBLAS_NUM_THREADS must be "1"');
    const cpus = app.deploy?.resources?.reservations?.cpus;
    if (String(cenv.EXPLAIND_WORKERS) !== String(Math.ceil(Number(cpus)))) p.push('EXPLAIND_WORKERS must equal the reserved cpus');
    const grace = toSeconds(app.stop_grace_period ?? '10s');
    const need = Number(setting(app.command, cenv, 'shutdown-delay')) / 1000 + Number(setting(app.command, cenv, 'drain-timeout')) / 1000;
    if (grace < need) p.push(`stop_grace_period ${grace} s < shutdown delay + drain ${need} s`);
    const lb = compose.services?.lb || {};
    if (!(lb.volumes || []).some((v) => /nginx\.conf:\/etc\/nginx\/nginx\.conf/.test(v))) p.push('lb must mount nginx.conf');
    if (lb.depends_on?.explaind?.condition !== 'service_healthy') p.push('lb must wait for healthy replicas');
    return p.concat(unknownVars(Object.keys(cenv), 'compose'));
  });
}

if (args.nginx) {
  const conf = fs.readFileSync(args.nginx, 'utf8').replace(/#.*$/gm, '');
  const directive = (name) => {
    const m = new RegExp(`^\\s*${name}\\s+([^;]*);`, 'm').exec(conf);
    return m ? m[1].trim() : undefined;
  };
  check('nginx: balancing, keep-alive, retries, request id', () => {
    const p = [];
    if (!/upstream\s+explaind\s*\{[^}]*least_conn;/.test(conf)) p.push('upstream must use least_conn');
    if (!/server\s+explaind:8080[^;]*max_fails=\d+/.test(conf)) p.push('server explaind:8080 needs max_fails');
    if (!(Number(directive('keepalive')) > 0)) p.push('upstream keepalive N is required');
    if (directive('proxy_http_version') !== '1.1' || !/proxy_set_header\s+Connection\s+"";/.test(conf))
      p.push('upstream keep-alive needs proxy_http_version 1.1 and an empty Connection header');
    const nu = (directive('proxy_next_upstream') || '').split(/\s+/);
    for (const w of ['error', 'timeout', 'non_idempotent']) if (!nu.includes(w)) p.push(`proxy_next_upstream lacks ${w}`);
    // A busy replica's 503 is retried once through error_page, not counted as a failure
    // (see deploy/nginx.conf: http_503 here turns a busy moment into "no live upstreams").
    if (nu.includes('http_503')) p.push('proxy_next_upstream must not list http_503 (it marks busy replicas failed)');
    const ep = /error_page\s+503\s+=\s*@(\w+);/.exec(conf);
    if (!ep || !/proxy_intercept_errors\s+on;/.test(conf)) p.push('a 503 must go once more through error_page 503 = @location');
    else if (!new RegExp(`location\\s+@${ep[1]}\\s*\\{[^}]*proxy_pass\\s+http://explaind;`).test(conf))
      p.push(`location @${ep[1]} must proxy_pass to the explaind upstream`);
    if (directive('proxy_next_upstream_tries') !== '2') p.push('proxy_next_upstream_tries must be 2');
    if (!/proxy_set_header\s+X-Request-ID\s+\$\w+;/i.test(conf)) p.push('X-Request-ID must be passed to explaind');
    return p;
  });
  const envs = [['k8s', env, ctr.args]];
  if (compose) envs.push(['compose', compose.services.explaind.environment || {}, compose.services.explaind.command]);
  check('nginx: limits and timeouts agree with explaind settings', () => {
    const p = [];
    const body = toBytes(directive('client_max_body_size'));
    const keep = toSeconds(/upstream\s+explaind\s*\{[^}]*keepalive_timeout\s+([^;]+);/.exec(conf)?.[1] ?? '60s');
    const read = toSeconds(directive('proxy_read_timeout') ?? '60s');
    for (const [where, e, argv] of envs) {
      const maxBody = toBytes(flagValue(argv || [], 'max-body') ?? e.EXPLAIND_MAX_BODY ?? '8MiB');
      if (body !== maxBody) p.push(`client_max_body_size ${body} != ${where} max body ${maxBody}`);
      const conn = Number(flagValue(argv || [], 'conn-timeout') ?? e.EXPLAIND_CONN_TIMEOUT ?? 75);
      if (!(keep < conn)) p.push(`upstream keepalive_timeout ${keep} s must be below ${where} conn timeout ${conn} s`);
      const job = Number(setting(argv, e, 'request-timeout')) / 1000;
      if (!(read > job)) p.push(`proxy_read_timeout ${read} s must exceed ${where} request timeout ${job} s`);
    }
    return p;
  });
}

console.log(`${total} checks, ${failed} failed`);
process.exit(failed ? 1 : 0);
