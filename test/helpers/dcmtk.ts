import { runCommand, type CommandResult } from './run-command.js';

export interface PeerOptions {
  callingAe?: string;
  calledAe?: string;
  extraArgs?: string[];
}

/** DCMTK's echoscu against 127.0.0.1. Exit code 0 means the association was accepted and echo succeeded. */
export function echoscu(port: number, options: PeerOptions = {}): Promise<CommandResult> {
  return runCommand('echoscu', [
    '-aet',
    options.callingAe ?? 'ECHOSCU',
    '-aec',
    options.calledAe ?? 'CXR_GATEWAY',
    ...(options.extraArgs ?? []),
    '127.0.0.1',
    String(port),
  ]);
}

/** DCMTK's storescu: all files in one association. Exit code 0 means every C-STORE got Success. */
export function storescu(port: number, files: readonly string[], options: PeerOptions = {}): Promise<CommandResult> {
  return runCommand(
    'storescu',
    [
      '-aet',
      options.callingAe ?? 'MODALITY',
      '-aec',
      options.calledAe ?? 'CXR_GATEWAY',
      ...(options.extraArgs ?? []),
      '127.0.0.1',
      String(port),
      ...files,
    ],
    { timeoutMs: 300_000 },
  );
}
