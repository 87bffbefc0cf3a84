import { Global, Module } from '@nestjs/common';
import { DeadLetterPublisher } from './dead-letter.publisher.js';
import { FlowControl } from './flow-control.js';
import { JetStreamServer } from './jetstream.server.js';

/**
 * Provides the transport strategy (main.ts hands the instance to `connectMicroservice`) and its
 * FlowControl, through which the workflow layer pauses pulling (back-pressure, dependency probes).
 */
@Global()
@Module({ providers: [DeadLetterPublisher, FlowControl, JetStreamServer], exports: [JetStreamServer, FlowControl] })
export class JetStreamModule {}
