// batch.mjs — conventions of the sharded batch job (deploy/k8s/batch), run by
// tests/test_deploy.c beside policy.mjs. One line per check, "ok   name" or
// "FAIL name: problem; problem"; exit status 1 when any failed.
//
//   node tests/deploy/batch.mjs DIR BASE_DIR
//
// DIR holds the Indexed Job of shards and the merge Job; BASE_DIR the server's
// manifests (the models claim they share).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';

const [dir, base] = process.argv.slice(2);
if (!dir || !base) {
  console.error('usage: node tests/deploy/batch.mjs DIR BASE_DIR');
  process.exit(2);
}
const load = (d) => fs.readdirSync(d).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
  .flatMap((f) => yaml.loadAll(fs.readFileSync(path.join(d, f), 'utf8')).filter(Boolean));
const docs = load(dir), baseDocs = load(base);
let failed = 0;
function check(name, fn) {
  let problems;
  try { problems = fn(); } catch (e) { problems = [String(e.message || e)]; }
  if (problems.length) { failed++; console.log(`FAIL ${name}: ${problems.join('; ')}`); } else console.log(`ok   ${name}`);
}
const jobs = docs.filter((d) => d.kind === 'Job');
const shards = jobs.find((j) => j.spec?.completionMode === 'Indexed');
const merge = jobs.find((j) => j !== shards);
const ctrOf = (j) => j.spec.template.spec.containers[0];
const flag = (args, name) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : undefined; };

check('an Indexed Job of shards and a merge Job', () => [
  ...(shards ? [] : ['no Job with completionMode: Indexed']), ...(merge ? [] : ['no merge Job'])]);

let n = 0;
check('shards: one pod per shard, index from JOB_COMPLETION_INDEX', () => {
  const p = [], a = ctrOf(shards).args || [];
  if (a[0] !== 'jobs' || a[1] !== 'run') p.push('args must start with jobs run');
  const m = /^env\/(\d+)$/.exec(flag(a, 'shard') || '');
  if (!m) return [...p, '--shard must be env/N (the index from JOB_COMPLETION_INDEX)'];
  n = Number(m[1]);
  if (shards.spec.completions !== n) p.push(`completions ${shards.spec.completions} != N ${n} of --shard`);
  if (shards.spec.parallelism !== undefined && shards.spec.parallelism > n) p.push('parallelism above the shard count');
  if (!/\$\(JOB_COMPLETION_INDEX\)/.test(flag(a, 'output') || '')) p.push('--output must name the shard by $(JOB_COMPLETION_INDEX)');
  const e = (ctrOf(shards).env || []).find((x) => x.name === 'JOB_COMPLETION_INDEX');
  if (e?.valueFrom?.fieldRef?.fieldPath !== "metadata.annotations['batch.kubernetes.io/job-completion-index']")
    p.push('env JOB_COMPLETION_INDEX must come from the job-completion-index annotation');
  if (!['OnFailure', 'Never'].includes(shards.spec.template.spec.restartPolicy)) p.push('restartPolicy OnFailure or Never');
  return p;
});

check('merge: every shard file, in order, into one output', () => {
  const p = [], a = ctrOf(merge).args || [];
  if (a[0] !== 'jobs' || a[1] !== 'merge') p.push('args must start with jobs merge');
  const out = flag(ctrOf(shards).args, 'output') || '';
  const want = Array.from({length: n}, (_, i) => out.replace('$(JOB_COMPLETION_INDEX)', String(i)));
  const got = a.slice(2, a.indexOf('--output') < 0 ? a.length : a.indexOf('--output'));
  if (JSON.stringify(got) !== JSON.stringify(want)) p.push(`merge inputs ${JSON.stringify(got)} != shard outputs ${JSON.stringify(want)}`);
  if (!flag(a, 'output')) p.push('--output missing');
  return p;
});

check('volumes: models read-only from the server\'s claim, results shared', () => {
  const p = [];
  const claims = new Set([...docs, ...baseDocs].filter((d) => d.kind === 'PersistentVolumeClaim').map((d) => d.metadata.name));
  for (const j of [shards, merge]) {
    const pod = j.spec.template.spec, c = ctrOf(j);
    for (const m of c.volumeMounts || []) {
      const v = (pod.volumes || []).find((x) => x.name === m.name);
      if (!v) { p.push(`${j.metadata.name}: mount ${m.name} has no volume`); continue; }
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim && !claims.has(claim)) p.push(`${j.metadata.name}: claim ${claim} is not defined`);
      if (m.mountPath === '/models' && m.readOnly !== true) p.push(`${j.metadata.name}: /models must be read-only`);
    }
  }
  const res = docs.find((d) => d.kind === 'PersistentVolumeClaim');
  if (!res || !(res.spec.accessModes || []).includes('ReadWriteMany')) p.push('the results claim must be ReadWriteMany (pods on many nodes)');
  return p;
});

check('security and threads as the server', () => {
  const p = [];
  for (const j of [shards, merge]) {
    const ps = j.spec.template.spec.securityContext || {}, c = ctrOf(j), cs = c.securityContext || {};
    if (ps.runAsNonRoot !== true || !(ps.runAsUser > 0)) p.push(`${j.metadata.name}: non-root numeric UID`);
    if (cs.readOnlyRootFilesystem !== true || cs.allowPrivilegeEscalation !== false) p.push(`${j.metadata.name}: read-only root, no escalation`);
    if (!(cs.capabilities?.drop || []).includes('ALL')) p.push(`${j.metadata.name}: drop ALL capabilities`);
    if (ps.seccompProfile?.type !== 'RuntimeDefault') p.push(`${j.metadata.name}: seccomp RuntimeDefault`);
    if (!c.resources?.requests?.memory || !c.resources?.limits?.memory) p.push(`${j.metadata.name}: memory request and limit`);
  }
  const e = (ctrOf(shards).env || []).find((x) => x.name === 'OPENBLAS_NUM_THREADS');
  if (e?.value !== '1') p.push('shards: OPENBLAS_NUM_THREADS must be "1"');
  return p;
});

console.log(`${failed} failed`);
process.exit(failed ? 1 : 0);
