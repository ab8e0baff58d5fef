/**
 * When a window polls, as a pure rule (the refresh manager applies it): fast while the window is
 * focused and something is tracked; unfocused, only while something bills and only in the leader
 * window (one poller for all windows), at the background interval; otherwise not at all (events
 * such as a ledger change or regained focus still trigger a poll).
 */
export interface PollingState {
  focused: boolean;
  /** Something runs or is orphaned (worth watching). */
  tracked: boolean;
  /** Something costs money now, or a dead man's switch needs pushing. */
  billing: boolean;
  /** This window is the one that polls for all while none is focused. */
  leader: boolean;
}

/** The interval to poll at, in ms; 0 = no timer. */
export function pollIntervalMs(s: PollingState, focusedMs: number, backgroundMs: number): number {
  if (s.focused) return s.tracked || s.billing ? focusedMs : 0;
  return s.billing && s.leader ? backgroundMs : 0;
}
