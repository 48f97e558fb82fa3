"""What moto's IAM enforcement decides for the stack's function roles.

Usage: iam_probe.py TEMPLATE STACK_NAME [--setup] -> JSON on stdout: for each role, {"allowed":
the actions (SQS: per queue) its inline policies name, "probes": {action: "ok" | "denied" | ...}}.
With --setup: no probe and enforcement left off; the stack's resources and every role's
assumed-role credentials instead ({"table", "secret", "bus", "queues": {logical: url},
"credentials": {role: {AccessKeyId, SecretAccessKey, SessionToken}}}), for a caller that seeds
the stack, switches enforcement on itself and runs the functions' own code under each role.
The AWS endpoint must be a moto server of its own (enforcement is switched on for the whole
server via POST /moto-api/reset-auth, which the suite's shared moto must never see).

Setup (stack creation, sts:AssumeRole into every function role) runs before enforcement; then
every probe is signed with the role's assumed-role credentials.
"""
import io
import json
import os
import sys
import urllib.request
from contextlib import redirect_stdout

import boto3
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(__file__))
import deployed_stack  # noqa: E402


def outcome(call):
    try:
        call()
        return "ok"
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 403:
            return "denied"
        return f"error {e.response['Error'].get('Code')}"


# Services whose moto responses have no `_determine_resource` (moto 5.2): every call is
# authorized as if on Resource "*". SQS has one (the queue's ARN), so its statements stay as
# deployed.
CHECKED_AGAINST_STAR = {"dynamodb", "secretsmanager", "events"}


def versioned(doc, secret):
    """moto's PutRolePolicy wants a Version; SAM's translated statements may carry none (AWS then
    reads the 2008 language, which differs only in policy variables, unused here). A statement's
    Resource that moto's CloudFormation resolved to None is the secret moto does not create: the
    stand-in's ARN takes its place."""
    statements = []
    for st in doc["Statement"]:
        if st.get("Resource") in (None, "None"):
            st = {**st, "Resource": secret}
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        if any(a.split(":")[0] in CHECKED_AGAINST_STAR for a in actions):
            # moto authorizes these services' calls against Resource "*" and evaluates no
            # condition key: an ARN-scoped or conditioned Allow would deny every call. The
            # action set is what moto can check; resources and conditions are template tests.
            st = {k: v for k, v in st.items() if k != "Condition"}
            st["Resource"] = "*"
        statements.append(st)
    return {"Version": "2012-10-17", **doc, "Statement": statements}


def main(template, name, setup=False):
    buf = io.StringIO()
    with redirect_stdout(buf):
        deployed_stack.create(template, name)
    stack = json.loads(buf.getvalue())
    res = {k: v["physical_id"] for k, v in stack["resources"].items()}
    res.update({k: v["physical_id"] for k, v in stack["stand_ins"].items()})
    table = next(v["physical_id"] for v in stack["resources"].values() if v["type"] == "AWS::DynamoDB::Table")
    secret = next(iter(stack["stand_ins"].values()))["physical_id"]
    bus = f"{name}-bus"  # the EventBusName parameter deployed_stack.create passes
    queues = [v["physical_id"] for v in stack["resources"].values() if v["type"] == "AWS::SQS::Queue"]
    # moto's CloudFormation keeps a role's inline policy as a dict, which its enforcement cannot
    # read (KeyError 'policy_document', a 500 on every call): the same documents, put again
    # through IAM's own API, are stored as JSON text.
    iam = boto3.client("iam")
    for role in stack["roles"].values():
        for pname, doc in role["inline"].items():
            iam.put_role_policy(RoleName=role["name"], PolicyName=pname, PolicyDocument=json.dumps(versioned(doc, secret)))
    sts = boto3.client("sts")
    creds = {}
    for logical, role in stack["roles"].items():
        arn = boto3.client("iam").get_role(RoleName=role["name"])["Role"]["Arn"]
        c = sts.assume_role(RoleArn=arn, RoleSessionName="probe")["Credentials"]
        creds[logical] = c
    if setup:
        json.dump({
            "table": table,
            "secret": secret,
            "bus": bus,
            "queues": {k: v["physical_id"] for k, v in stack["resources"].items() if v["type"] == "AWS::SQS::Queue"},
            "credentials": {k: {f: c[f] for f in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
                            for k, c in creds.items()},
        }, sys.stdout)
        return
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                                  headers={"Content-Type": "text/plain"}))
    out = {}
    for logical, c in creds.items():
        s = boto3.Session(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
        ddb, sm, ev, sqs = (s.client(x) for x in ("dynamodb", "secretsmanager", "events", "sqs"))
        probes = {
            "dynamodb:GetItem": lambda: ddb.get_item(TableName=table, Key={"pk": {"S": "x"}, "sk": {"S": "x"}}),
            "dynamodb:Query": lambda: ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                                                ExpressionAttributeValues={":p": {"S": "x"}}),
            "dynamodb:PutItem": lambda: ddb.put_item(TableName=table, Item={"pk": {"S": "probe"}, "sk": {"S": "probe"}}),
            "secretsmanager:GetSecretValue": lambda: sm.get_secret_value(SecretId=secret),
            "events:PutEvents": lambda: ev.put_events(Entries=[{"Source": "probe", "DetailType": "probe",
                                                                "Detail": "{}", "EventBusName": bus}]),
        }
        for q in queues:
            probes[f"sqs:SendMessage[{q.rsplit('/', 1)[-1]}]"] = lambda q=q: sqs.send_message(QueueUrl=q, MessageBody="x")
        allowed = set()
        for d in stack["roles"][logical]["inline"].values():
            for st in d["Statement"]:
                for a in [st["Action"]] if isinstance(st["Action"], str) else st["Action"]:
                    if a == "sqs:SendMessage":
                        res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                        allowed.update(f"sqs:SendMessage[{r.rsplit(':', 1)[-1]}]" for r in res)
                    else:
                        allowed.add(a)
        out[logical] = {
            "allowed": sorted(allowed),
            "probes": {k: outcome(f) for k, f in probes.items()},
        }
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], setup="--setup" in sys.argv[3:])
