// dependency-cruiser rules for cxr-gateway: src/ folders follow an image's trip through the gateway, and
// imports only point down that trip (from a later, higher-ranked layer to an earlier, lower-ranked one).
// `npm test` runs `depcruise src bench` before the tests, so a new folder cycle or upward import fails CI.
//
// Layers, lowest first. A module may import modules of its own folder and of LOWER layers only; two folders
// sharing a layer may not import each other. errors.ts and gateway.ts are files at src/ root and count as
// layers of their own.
const LAYERS = [
  { name: 'errors', path: '^src/errors\\.ts$', why: 'GatewayError and describeError: a leaf that everything may use' },
  { name: 'logging', path: '^src/logging/', why: 'logger, library log routing, stage timings: observability leaves' },
  { name: 'dicom', path: '^src/dicom/', why: 'DICOM vocabulary and parsing (UIDs, transfer syntaxes, Part 10 headers, dataset walker)' },
  { name: 'imaging', path: '^src/imaging/', why: 'pixel decoding, LUTs, VOI, resize, preprocessing: used by inference, reporting, training' },
  { name: 'inference', path: '^src/inference/', why: 'the DenseNet, its weights and manifests, the tfjs backends: never the worker pool (analysis) nor the pipeline' },
  { name: 'lrp', path: '^src/lrp/', why: 'layer-wise relevance propagation over the DenseNet (TF.js and ONNX graphs)' },
  { name: 'engines', path: '^src/engines/', why: 'the serving engines (TF.js, ONNX Runtime) behind one interface, and the choice between them' },
  { name: 'reporting', path: '^src/reporting/', why: 'DICOM SC/SR, heatmaps, HL7 ORU and MLLP framing: builds outputs, delivers nothing' },
  { name: 'tools', path: '^src/(phantoms|training)/', why: 'phantom rendering and model training: offline tools that only the cli drives' },
  { name: 'routing', path: '^src/routing/', why: 'rule schema and matcher: pure functions of dataset attributes' },
  { name: 'config', path: '^src/config/', why: 'YAML schema and loader: leaf dependencies only (no maintenance, no tfjs; see config-loads-no-tfjs)' },
  { name: 'store', path: '^src/store/', why: 'spool files, atomic writes and the SQLite job store, and the InstanceSink hand-over types' },
  { name: 'dimse', path: '^src/dimse/', why: 'receive (SCP) and send (SCU) DIMSE; writes received instances into an InstanceSink from store' },
  { name: 'assembly', path: '^src/assembly/', why: 'collects stored instances into studies' },
  { name: 'analysis', path: '^src/analysis/', why: 'the worker pool, the worker, its protocol and the per-image infer -> explain -> write step' },
  { name: 'export', path: '^src/export/', why: 'every delivery (PACS folder/C-STORE, RIS folder/MLLP), its retry policy and outage watch' },
  { name: 'maintenance', path: '^src/maintenance/', why: 'retention and scheduled tasks over the store' },
  { name: 'pipeline', path: '^src/pipeline/', why: 'the job state machine: drives a study from the job store through analysis to export' },
  { name: 'admin', path: '^src/admin/', why: 'the admin HTTP server: health and metrics over pipeline and store' },
  { name: 'gateway', path: '^src/gateway\\.ts$', why: 'wires every part into the running daemon' },
  { name: 'cli', path: '^src/cli/', why: 'the command line: the top; nothing imports it' },
];

const layerRules = LAYERS.slice(0, -1).map((layer, rank) => ({
  name: `layer-${layer.name}`,
  comment: `${layer.name} (rank ${rank}: ${layer.why}) may import only layers below it: ${LAYERS.slice(0, rank).map((l) => l.name).filter((n) => n !== 'tools' || layer.name === 'cli').join(', ') || 'none'}`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(rank + 1).map((l) => l.path) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No module-level import cycles (which would also be folder cycles); type-only imports count, as they are design arrows too.',
      severity: 'error',
      from: { path: '^(src|bench)/' },
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'tools-not-from-the-daemon',
      comment: 'phantoms and training are offline tools: only the cli (and bench scripts) use them, never a daemon layer.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|phantoms|training)/' },
      to: { path: '^src/(phantoms|training)/' },
    },
    {
      name: 'tools-not-each-other',
      comment: 'phantoms and training share a layer and stay independent of each other.',
      severity: 'error',
      from: { path: '^src/(phantoms|training)/' },
      to: { path: '^src/(phantoms|training)/', pathNot: '^src/$1/' },
    },
    {
      name: 'nothing-imports-cli',
      comment: 'cli is the top of the tree: no src module or bench script imports it.',
      severity: 'error',
      from: { pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-cli-imports-gateway',
      comment: 'gateway.ts assembles the daemon; only the cli starts it (tests may, but they are not cruised).',
      severity: 'error',
      from: { pathNot: '^src/cli/' },
      to: { path: '^src/gateway\\.ts$' },
    },
    {
      name: 'src-not-bench',
      comment: 'bench/ holds benchmark scripts that drive src/; src never imports them.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^bench/' },
    },
    {
      name: 'config-loads-no-tfjs',
      comment: 'Validating a YAML file must not load TensorFlow.js: take backend names from inference/backend-types.ts.',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: 'node_modules/@tensorflow/', reachable: true },
    },
    {
      name: 'inference-not-up',
      comment: 'inference is the model alone: the worker pool and the per-image step live in analysis, the driving in pipeline (also a layer rule; named so the message is plain).',
      severity: 'error',
      from: { path: '^src/inference/' },
      to: { path: '^src/(analysis|pipeline|lrp)/' },
    },
    {
      name: 'every-folder-has-a-layer',
      comment: 'A new src/ folder or root file must be given a layer in LAYERS (.dependency-cruiser.cjs), or no rule would hold it.',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.map((l) => l.path) },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve is a typo or a missing dependency.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are real arrows between folders: count them.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
