// The config's `inference` and `explain` sections as the options an engine is chosen with: the daemon's pool,
// `render` and `classify` read them the one way.

import type { GatewayConfig } from '../config/schema.js';
import type { EnginePreference } from '../engines/engine-types.js';
import type { EngineChoiceOptions } from '../engines/select-engine.js';
import type { LrpOptions } from '../lrp/composites.js';

/** Everything but the model directory and the log: plain data, so it crosses into a worker thread as it is. */
export type EngineSettings = Omit<EngineChoiceOptions, 'modelDir' | 'log'>;

/** `engine` overrides inference.engine (the command line's --engine). */
export function engineSettings(config: GatewayConfig, engine?: EnginePreference): EngineSettings {
  const { inference } = config;
  return {
    engine: engine ?? inference.engine,
    tfjsBackend: inference.backend,
    executionProviders: [...inference.onnxruntime.executionProviders],
    intraOpThreads: inference.onnxruntime.intraOpThreads,
    allowSoftwareGpu: inference.allowSoftwareGpu,
    lrp: lrpSettings(config.explain),
  };
}

/** The `explain` settings the engine is built with: all but the target, which each request names. */
export function lrpSettings(explain: GatewayConfig['explain']): Partial<LrpOptions> {
  const { target: _target, ...options } = explain;
  return options;
}
