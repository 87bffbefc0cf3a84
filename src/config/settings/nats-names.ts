/** A NATS stream or consumer name (and the orchestrator's name, which names the consumers): no spaces, dots or wildcards. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A subject to publish on: dot-separated tokens, no wildcard. */
export const SUBJECT_RE = /^[^\s.*>]+(\.[^\s.*>]+)*$/;
/** A subject filter: tokens or `*`, optionally ending in `.>` (or `>` alone). */
export const FILTER_RE = /^([^\s.*>]+|\*)(\.([^\s.*>]+|\*))*(\.>)?$|^>$/;
