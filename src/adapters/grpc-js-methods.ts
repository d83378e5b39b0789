/**
 * Which gRPC methods may be sent twice: dialtone's own per-method setting,
 * and the methods grpc-js's service config gives a retryPolicy or a
 * hedgingPolicy (gRFC A6: the service owner saying they are safe to repeat).
 */

/** Full method paths ("/pkg.Service/Method"), whole services ("/pkg.Service/"), or a function of the path. */
export type IdempotentSetting = readonly string[] | ((method: string) => boolean);

interface MethodName {
  service?: string;
  method?: string;
}

export function idempotentMethods(setting: IdempotentSetting | undefined, serviceConfig: string | object | undefined): (method: string) => boolean {
  const fromConfig = configured(serviceConfig);
  let own: (method: string) => boolean;
  if (typeof setting === "function") own = setting;
  else if (setting === undefined) own = () => false;
  else if (Array.isArray(setting) && setting.every((s) => typeof s === "string" && s.startsWith("/"))) {
    const exact = new Set(setting.filter((s) => !s.endsWith("/")));
    const services = setting.filter((s) => s.endsWith("/"));
    own = (m) => exact.has(m) || services.some((s) => m.startsWith(s));
  } else throw new TypeError('createGrpcChannel: idempotent must be method paths ("/pkg.Service/Method" or "/pkg.Service/") or a function');
  return (m) => own(m) || fromConfig(m);
}

function configured(serviceConfig: string | object | undefined): (method: string) => boolean {
  if (serviceConfig === undefined) return () => false;
  const config = (typeof serviceConfig === "string" ? JSON.parse(serviceConfig) : serviceConfig) as {
    methodConfig?: Array<{ name?: MethodName[]; retryPolicy?: unknown; hedgingPolicy?: unknown }>;
  };
  const names: MethodName[] = [];
  for (const mc of config.methodConfig ?? []) {
    if (mc.retryPolicy || mc.hedgingPolicy) names.push(...(mc.name ?? []));
  }
  return (method) => {
    const [, service, name] = method.split("/");
    // gRFC A6 name matching: an empty service matches every method, a missing method matches the whole service.
    return names.some((n) => !n.service || (n.service === service && (!n.method || n.method === name)));
  };
}
