// The words that tell a reader what an AI object is and how far to trust it: the Series Description of the
// heatmap and SR series. LO allows 64 characters, so the text is built to fit rather than cut mid-word.

const LO_MAX = 64;

export interface NoticeInput {
  /** "AI heatmap (LRP)", "AI result (SR)". */
  what: string;
  /** e.g. "NOT FOR DIAGNOSTIC USE"; '' when the site allows diagnostic use. */
  usageNotice: string;
  /** Set when this output replaces those of an earlier revision. */
  supersedesRevision?: number | undefined;
}

/** "AI heatmap (LRP) - NOT FOR DIAGNOSTIC USE", "AI heatmap (LRP) corrected, replaces r1 - NOT FOR ...". */
export function seriesDescription(n: NoticeInput): string {
  const corrected = n.supersedesRevision === undefined ? '' : ` corrected, replaces r${n.supersedesRevision}`;
  const full = `${n.what}${corrected}${n.usageNotice === '' ? '' : ` - ${n.usageNotice}`}`;
  if (full.length <= LO_MAX) return full;
  // Keep the notice whole: shorten the correction note first, then the description of what it is.
  const short = `${n.what}${n.supersedesRevision === undefined ? '' : ' corrected'}${n.usageNotice === '' ? '' : ` - ${n.usageNotice}`}`;
  return short.length <= LO_MAX ? short : short.slice(0, LO_MAX);
}
