import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/** Where the OpenAPI document is served. */
export const OPENAPI_PATH = '/openapi.json';

/**
 * Serves the OpenAPI document (JSON, no UI) at `GET /openapi.json`, built from the controllers' decorators
 * on the first request. Open, like /health: it describes the API and holds no data; every admin endpoint
 * it lists still needs the token (the document declares the bearer scheme on them).
 */
export function setupOpenApi(app: INestApplication, version = packageVersion()): void {
  const config = new DocumentBuilder()
    .setTitle('meta-agent orchestrator')
    .setDescription('Health, metrics and the admin API (bearer token: META_AGENT_ADMIN_TOKEN). Workflows themselves are driven over NATS JetStream.')
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'One of the tokens of META_AGENT_ADMIN_TOKEN' })
    .build();
  SwaggerModule.setup('openapi', app, () => SwaggerModule.createDocument(app, config), { ui: false, raw: ['json'], jsonDocumentUrl: OPENAPI_PATH });
}

/** The service's version (package.json, two levels above dist/admin or src/admin). */
function packageVersion(): string {
  try {
    const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
