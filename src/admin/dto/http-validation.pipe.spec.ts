import 'reflect-metadata';
import { BadRequestException } from '@nestjs/common';
import { ExtendWorkflowDto } from './extend-workflow.dto.js';
import { HttpValidationPipe } from './http-validation.pipe.js';
import { ListWorkflowsQuery } from './list-workflows.query.js';

const pipe = new HttpValidationPipe();
const body = (value: unknown) => pipe.transform(value, { type: 'body', metatype: ExtendWorkflowDto });
const query = (value: unknown) => pipe.transform(value, { type: 'query', metatype: ListWorkflowsQuery });

/** The 400's messages, or 'ok'. */
function refusal(run: () => unknown): string[] | 'ok' {
  try {
    run();
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequestException);
    return ((error as BadRequestException).getResponse() as { message: string[] }).message;
  }
}

describe('HttpValidationPipe: POST /workflows/:corr_id/extend body', () => {
  it('accepts a whole number of seconds from 1 to 7 days, as an instance of the DTO', () => {
    for (const seconds of [1, 30, 604800]) {
      const out = body({ seconds });
      expect(out).toBeInstanceOf(ExtendWorkflowDto);
      expect(out).toEqual(Object.assign(new ExtendWorkflowDto(), { seconds }));
    }
  });

  it('refuses anything else with one clear message per property', () => {
    expect(refusal(() => body({}))).toEqual(['seconds must be an integer']);
    expect(refusal(() => body(undefined))).toEqual(['seconds must be an integer']);
    expect(refusal(() => body({ seconds: '30' }))).toEqual(['seconds must be an integer']);
    expect(refusal(() => body({ seconds: 2.5 }))).toEqual(['seconds must be an integer']);
    expect(refusal(() => body({ seconds: 0 }))).toEqual(['seconds must not be less than 1']);
    expect(refusal(() => body({ seconds: 604801 }))).toEqual(['seconds must not be greater than 604800']);
    expect(refusal(() => body({ seconds: 5, extra: 1 }))).toEqual(['property extra should not exist']);
    expect(refusal(() => body([5]))).toEqual(['the body must be a JSON object']);
    expect(refusal(() => body('5'))).toEqual(['the body must be a JSON object']);
  });
});

describe('HttpValidationPipe: GET /workflows query', () => {
  it('converts a numeric limit (query values are strings) and keeps the rest', () => {
    expect(query({ limit: '20', status: 'open', type: 'trading', cursor: 'abc' })).toEqual(
      Object.assign(new ListWorkflowsQuery(), { limit: 20, status: 'open', type: 'trading', cursor: 'abc' }),
    );
    expect(query({})).toBeInstanceOf(ListWorkflowsQuery);
  });

  it('refuses bad filters, limits and unknown parameters', () => {
    expect(refusal(() => query({ limit: '0' }))).toEqual(['limit must not be less than 1']);
    expect(refusal(() => query({ limit: '501' }))).toEqual(['limit must not be greater than 500']);
    expect(refusal(() => query({ limit: 'ten' }))).toEqual(['limit must be an integer']);
    expect(refusal(() => query({ limit: '1.5' }))).toEqual(['limit must be an integer']);
    expect(refusal(() => query({ status: 'done' }))).toEqual([expect.stringMatching(/^status must be one of: open, finished, pending, .*cancelled$/)]);
    expect(refusal(() => query({ type: 'Bad Type' }))).toEqual(['type must be 1 to 64 characters of a-z 0-9 _ -']);
    expect(refusal(() => query({ limt: '5' }))).toEqual(['property limt should not exist']);
    expect(refusal(() => query({ status: ['open', 'finished'] }))).not.toBe('ok');
  });

  it('leaves parameters that are not DTOs alone (path parameters, the token name)', () => {
    expect(pipe.transform('c-1', { type: 'param', metatype: String })).toBe('c-1');
    expect(pipe.transform('ops', { type: 'custom', metatype: String })).toBe('ops');
  });
});
