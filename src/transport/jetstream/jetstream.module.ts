import { Module } from '@nestjs/common';
import { DeadLetterPublisher } from './dead-letter.publisher.js';
import { JetStreamServer } from './jetstream.server.js';

/** Provides the transport strategy; main.ts hands the instance to `connectMicroservice`. */
@Module({ providers: [DeadLetterPublisher, JetStreamServer], exports: [JetStreamServer] })
export class JetStreamModule {}
