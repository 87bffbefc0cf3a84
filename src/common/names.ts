/*
 * The names the message contract constrains, each defined here once: the corr_id, the workflow type and the
 * agent name. The DTOs, the settings, the strategy registry, the readiness encoding, the admin and history
 * endpoints take them from here. Two documents write them out, for readers without the code:
 * docs/asyncapi.yaml and the workflows file's JSON Schema (workflows.schema.json); unit specs hold those
 * copies equal to these (asyncapi.spec.ts, workflows-file.spec.ts).
 */

export interface NamePattern {
  /** The characters and length as a regular expression, unanchored (`[a-z0-9_-]{1,64}`): for patterns built of several names. */
  readonly body: string;
  /** Anchored, as JSON Schema, OpenAPI and AsyncAPI write it: `^[a-z0-9_-]{1,64}$`. */
  readonly pattern: string;
  readonly re: RegExp;
  /** In words, for messages: `1 to 64 characters of a-z 0-9 _ -`. */
  readonly rule: string;
}

function namePattern(chars: string, maxLength: number, words: string): NamePattern {
  const body = `[${chars}]{1,${maxLength}}`;
  return { body, pattern: `^${body}$`, re: new RegExp(`^${body}$`), rule: `1 to ${maxLength} characters of ${words}` };
}

/** SPEC: a corr_id is 1 to 128 characters of A-Z a-z 0-9 . _ : - (anything else is bad input). */
export const CORR_ID = namePattern('A-Za-z0-9._:-', 128, 'A-Z a-z 0-9 . _ : -');

/** A workflow type (a strategy's, a trigger's `workflow_type`, a type of the workflows file). */
export const WORKFLOW_TYPE = namePattern('a-z0-9_-', 64, 'a-z 0-9 _ -');

/** An agent's name (a signal's `agent_name`, the last token of its subject): never holds the readiness encoding's separators. */
export const AGENT_NAME = namePattern('A-Za-z0-9_-', 64, 'A-Z a-z 0-9 _ -');
