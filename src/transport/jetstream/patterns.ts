/** Handler patterns: `@EventPattern(TRIGGER_PATTERN)` gets the trigger consumer's messages, and so on. */
export const TRIGGER_PATTERN = 'signals.normalized';
export const AGENT_SIGNAL_PATTERN = 'signals.enriched.*';
