import { runService } from './bootstrap.js';

void runService();
