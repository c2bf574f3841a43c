/**
 * A worker-shaped HTTP front for workers/routing in Node: `POST /v1/chat/completions` and
 * `/v1/completions` go through an OriginRouter, the chosen route is reported in x-petrel-route,
 * replies stream back as OpenAI SSE or JSON. It is what the Hono worker does with a route, minus
 * auth, sessions and moderation — used by the routing tests and by `bench:origin` (the routing
 * code's own cost, without workerd).
 */
import { replyResponse, routeHeader, type OriginRouter } from "../../workers/routing/index.ts";
import { serveFetch, type FetchServer } from "./node-http.ts";

const notFound = (message: string, code: string) => Response.json({ error: { message, type: "invalid_request_error", param: null, code } }, { status: 404 });

export function routeHandler(router: OriginRouter): (req: Request) => Promise<Response> {
  return async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method !== "POST" || (path !== "/v1/chat/completions" && path !== "/v1/completions")) return notFound(`Unknown route: ${req.method} ${path}`, "unknown_url");
    let body: Record<string, unknown> & { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown }; return_token_ids?: unknown };
    try {
      body = (await req.json()) as typeof body;
    } catch {
      return Response.json({ error: { message: "We could not parse the JSON body of your request.", type: "invalid_request_error", param: null, code: "invalid_json" } }, { status: 400 });
    }
    const model = typeof body.model === "string" ? body.model : "";
    const kind = path === "/v1/chat/completions" ? "chat" : "completion";
    let result;
    try {
      result = await router.route(model, { kind, body }, req.signal);
    } catch {
      return new Response(null, { status: 499 }); // the client went away
    }
    if (!result) return notFound(`The model '${model}' does not exist or you do not have access to it.`, "model_not_found");
    const headers = { "x-petrel-route": routeHeader(result.route) };
    if (!result.ok) return Response.json(result.error, { status: result.status, headers: { ...headers, ...result.headers } });
    const meta = { kind, id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`, model, created: Math.floor(Date.now() / 1000) } as const;
    return replyResponse(meta, result.events, { stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, returnTokenIds: body.return_token_ids === true, headers });
  };
}

export function serveRoutes(router: OriginRouter, opts: { host?: string; port?: number } = {}): Promise<FetchServer> {
  return serveFetch(routeHandler(router), {
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    maxBodyBytes: 4 << 20,
    tooLarge: (limit) => Response.json({ error: { message: `Request body too large: the limit is ${limit} bytes.`, type: "invalid_request_error", param: null, code: "request_too_large" } }, { status: 413 }),
  });
}
