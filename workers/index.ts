/** The worker entry: the Hono app, and the Durable Object classes wrangler.toml binds. */
import { createApp } from "./app.ts";

export { AccountDO } from "../durable-objects/account.ts";
export { SessionDO } from "../durable-objects/session.ts";
export { ShardDO } from "../durable-objects/shard.ts";

const app = createApp();

export default app;
