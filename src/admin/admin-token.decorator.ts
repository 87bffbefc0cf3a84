import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { AdminRequest } from '../common/admin-token.guard.js';

/** The name of the admin token the request presented (set by AdminTokenGuard): "who asked". */
export const AdminTokenName = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  return context.switchToHttp().getRequest<AdminRequest>().adminTokenName ?? 'unknown';
});
