// How an engine choice reaches the log: one line per engine, backend or execution provider passed over (a TF.js
// backend keeps the code it always had, ANALYSIS-5002; engines and ONNX Runtime providers ANALYSIS-5016), then
// one ANALYSIS-5015 line for what was chosen. The CLI logs it where the engine is made; the worker
// pool logs it from what its first worker reports, so a daemon with several workers says it once per start.

import type { EngineInfo } from './engine.js';

/** Fits the logger's info(): a message and string fields with their event code. */
export type EngineLog = (
  message: string,
  fields: { readonly event: 'ANALYSIS-5002' | 'ANALYSIS-5015' | 'ANALYSIS-5016' } & Record<string, string>,
) => void;

export function logEngineChoice(info: EngineInfo, log: EngineLog): void {
  for (const s of info.skipped) {
    if (s.name.startsWith('tfjs/'))
      log('inference backend skipped', {
        event: 'ANALYSIS-5002',
        backend: s.name.slice('tfjs/'.length),
        reason: s.reason,
      });
    else log('inference engine or device skipped', { event: 'ANALYSIS-5016', skipped: s.name, reason: s.reason });
  }
  log('inference engine chosen', {
    event: 'ANALYSIS-5015',
    ...info.details,
    engine: info.engine,
    device: info.device,
    ...(info.skipped.length === 0 ? {} : { passedOver: info.skipped.map((s) => s.name).join(', ') }),
  });
}
