"""Reads template.yaml with cfn-lint's CloudFormation YAML loader (it understands !Ref, !If, ...)
and prints the facts the Rust tests check: each function's Binary and HTTP routes with their auth.
"""
import json
import sys

from cfnlint.decode import cfn_yaml


def main(path):
    template = cfn_yaml.load(path)
    functions = {}
    for name, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties", {})
        meta = res.get("Metadata", {})
        routes = []
        schedules = []
        for ev in (props.get("Events") or {}).values():
            p = ev.get("Properties", {})
            if ev.get("Type") == "HttpApi":
                auth = (p.get("Auth") or {}).get("Authorizer", "DEFAULT")
                routes.append({"method": p.get("Method"), "path": p.get("Path"), "authorizer": auth})
            elif ev.get("Type") in ("Schedule", "ScheduleV2"):
                schedules.append(p.get("ScheduleExpression"))
        functions[name] = {
            "binary": (meta.get("BuildProperties") or {}).get("Binary"),
            "build_method": meta.get("BuildMethod"),
            "code_uri": props.get("CodeUri"),
            "routes": routes,
            "schedules": schedules,
            "reserved_concurrency": props.get("ReservedConcurrentExecutions"),
            "policies": json.dumps(props.get("Policies"), default=str),
        }
    api = template["Resources"].get("HttpApi", {}).get("Properties", {}).get("Auth", {})
    http_api = template["Resources"].get("HttpApi", {}).get("Properties", {})
    table = template["Resources"].get("StateTable", {}).get("Properties", {})
    globals_fn = template.get("Globals", {}).get("Function", {})
    print(json.dumps({
        "functions": functions,
        "default_authorizer": api.get("DefaultAuthorizer"),
        "runtime": globals_fn.get("Runtime"),
        "architectures": globals_fn.get("Architectures"),
        "resources": {
            name: {"type": res.get("Type"), "depends_on": depends_on(res)}
            for name, res in template["Resources"].items()
        },
        "http_api": {
            "default_route_settings": http_api.get("DefaultRouteSettings"),
            "route_settings": http_api.get("RouteSettings"),
        },
        "table_indexes": {
            gsi.get("IndexName"): {
                "keys": [k.get("AttributeName") for k in gsi.get("KeySchema", [])],
                "projection": gsi.get("Projection", {}).get("ProjectionType"),
                "attributes": gsi.get("Projection", {}).get("NonKeyAttributes", []),
            }
            for gsi in table.get("GlobalSecondaryIndexes", [])
        },
        "parameters": {
            name: {"default": p.get("Default"), "allowed": p.get("AllowedValues")}
            for name, p in template.get("Parameters", {}).items()
        },
        "environment": sorted(((globals_fn.get("Environment") or {}).get("Variables") or {}).keys()),
        "resource_types": {n: r.get("Type") for n, r in template.get("Resources", {}).items()},
        "conditions": sorted((template.get("Conditions") or {}).keys()),
    }, default=str))


def depends_on(res):
    d = res.get("DependsOn") or []
    return [d] if isinstance(d, str) else list(d)


if __name__ == "__main__":
    main(sys.argv[1])
