// Regenerates the settings table of docs/OPERATIONS.md from the settings schema (run after `npm run build`).
import { readFileSync, writeFileSync } from 'node:fs';
import { withSettingsTable } from '../dist/config/settings-table.js';

const file = new URL('../docs/OPERATIONS.md', import.meta.url);
writeFileSync(file, withSettingsTable(readFileSync(file, 'utf8')));
