import { Injectable } from '@nestjs/common';

/** Set when SIGTERM arrives: readiness goes false at once, before anything closes. */
@Injectable()
export class ShutdownState {
  private shuttingDown = false;

  begin(): void {
    this.shuttingDown = true;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}
