/**
 * What a verify task checks a stored backup against: the sha256 the runner computed while
 * sending each file, and matched on read-back, recorded on the image at backup time.
 */
import type { Image } from './model.ts';

/**
 * The sha256 of each file of one stored backup of `image` (its FULL, or a chain point), as the
 * runner verified them at backup time; null when none was recorded (older images).
 */
export function recordedSums(
  image: Pick<Image, 'source' | 'disks' | 'increments'>,
  backupId: string,
): Record<string, string> | null {
  const files: { file?: string; sha256?: string }[] =
    image.increments.find((i) => i.source === backupId)?.disks ??
    (image.source === backupId ? image.disks : []);
  const sums = Object.fromEntries(
    files.flatMap((f) => (f.file && f.sha256 ? [[f.file, f.sha256] as const] : [])),
  );
  return Object.keys(sums).length > 0 ? sums : null;
}
