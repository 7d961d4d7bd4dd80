import { describeError } from '../errors.js';

/**
 * Turns a file system error met while writing into a folder destination into a retry cause and a sentence
 * for the admin. Every one of them is about the folder, not the item (permissions, a read-only or full disk,
 * a file where a folder should be), so each is a retry: the next attempt succeeds once the folder is fixed.
 */
export function folderFailure(error: unknown, folder: string): { cause: string; reason: string } {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return {
        cause: 'folder-not-writable',
        reason: `cannot write into ${folder}: permission denied (${code}); make it writable by the gateway's user`,
      };
    case 'EROFS':
      return {
        cause: 'folder-not-writable',
        reason: `cannot write into ${folder}: the file system is mounted read-only (EROFS)`,
      };
    case 'ENOSPC':
    case 'EDQUOT':
      return {
        cause: 'folder-full',
        reason: `cannot write into ${folder}: no space left (${code}); free space on that disk`,
      };
    case 'ENOTDIR':
    case 'EEXIST':
      return {
        cause: 'folder-not-a-directory',
        reason: `cannot write into ${folder}: part of that path is a file, not a folder (${code})`,
      };
    default:
      return { cause: 'folder-write-failed', reason: `cannot write into ${folder}: ${describeError(error)}` };
  }
}
