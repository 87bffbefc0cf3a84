import { Global, Module } from '@nestjs/common';
import { NatsConnectionService } from './nats-connection.service.js';

@Global()
@Module({ providers: [NatsConnectionService], exports: [NatsConnectionService] })
export class NatsModule {}
