"""The stack as deployed, on moto: translates template.yaml with the SAM translator (what
`sam deploy` hands CloudFormation), points every function's code at a stub object (as
`sam package` would upload the bootstrap), and creates the stack in moto's CloudFormation.

Usage: deployed_stack.py translate TEMPLATE            -> the plain CloudFormation JSON on stdout
       deployed_stack.py create TEMPLATE STACK_NAME    -> {"stack_status", "outputs", "resources",
                                                           "translated_types"} on stdout
The AWS endpoint (moto) and credentials come from the environment (AWS_ENDPOINT_URL, ...).
"""
import ast
import io
import json
import sys
import zipfile

import boto3
from cfnlint.decode import cfn_yaml
from samtranslator.public.translator import ManagedPolicyLoader  # noqa: F401  (the real loader's shape)
from samtranslator.translator.transform import transform

CODE_BUCKET = "wxopen-local-code"
CODE_KEY = "bootstrap.zip"

# The only AWS managed policies the template names (SAM resolves names to ARNs without IAM).
MANAGED = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}


class StaticPolicies:
    def load(self):
        return MANAGED


def translate(path):
    template = json.loads(json.dumps(cfn_yaml.load(path)))
    for res in template.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = f"s3://{CODE_BUCKET}/{CODE_KEY}"
    return transform(template, {}, StaticPolicies())


NO_VALUE = {"Ref": "AWS::NoValue"}


def condition_values(template, parameters):
    """Evaluates the template's conditions (Fn::Equals / Fn::Not / Ref to parameters)."""
    values = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
    values.update(parameters)

    def ev(c):
        if isinstance(c, dict):
            (op, arg), = c.items()
            if op == "Ref":
                return values.get(arg)
            if op == "Fn::Equals":
                return str(ev(arg[0])) == str(ev(arg[1]))
            if op == "Fn::Not":
                return not ev(arg[0])
            if op == "Fn::And":
                return all(ev(a) for a in arg)
            if op == "Fn::Or":
                return any(ev(a) for a in arg)
            if op == "Condition":
                return ev(template["Conditions"][arg])
            raise ValueError(f"condition {op}")
        return c

    return {k: bool(ev(v)) for k, v in template.get("Conditions", {}).items()}


def resolve_conditions(template, parameters):
    """What CloudFormation does with conditions before creating anything: resources and outputs
    whose condition is false are left out, Fn::If picks its branch, AWS::NoValue disappears
    (moto's IAM role parser does not expect them)."""
    conds = condition_values(template, parameters)

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"Fn::If"}:
                c, a, b = v["Fn::If"]
                return walk(a if conds[c] else b)
            out = {}
            for k, x in v.items():
                x = walk(x)
                if x != NO_VALUE:
                    out[k] = x
            return out
        if isinstance(v, list):
            return [x for x in (walk(x) for x in v) if x != NO_VALUE]
        return v

    for section in ("Resources", "Outputs"):
        template[section] = {
            k: walk(r) for k, r in template.get(section, {}).items()
            if conds.get(r.get("Condition"), True)
        }
    return template


def moto_quirks(template, parameters):
    """Spellings CloudFormation accepts that moto does not: an archive's EventPattern
    as a JSON object (moto wants the string); a table's DeletionProtectionEnabled from a String
    parameter (CloudFormation coerces "true"/"false"; moto keeps the string, which the SDK then
    cannot read)."""
    for r in template["Resources"].values():
        props = r.get("Properties", {})
        flag = props.get("DeletionProtectionEnabled")
        if r["Type"] == "AWS::DynamoDB::Table" and isinstance(flag, dict) and "Ref" in flag:
            value = parameters.get(flag["Ref"], template["Parameters"][flag["Ref"]].get("Default"))
            props["DeletionProtectionEnabled"] = str(value).lower() == "true"
        if r["Type"] == "AWS::Events::Archive" and isinstance(props.get("EventPattern"), dict):
            props["EventPattern"] = json.dumps(props["EventPattern"])
        # A rule's EventBusName as Ref of the bus: CloudFormation gives the bus's name, moto the
        # bus object; the bus's own Name is used instead.
        bus = props.get("EventBusName")
        if r["Type"] == "AWS::Events::Rule" and isinstance(bus, dict) and bus.get("Ref") in template["Resources"]:
            props["EventBusName"] = template["Resources"][bus["Ref"]]["Properties"]["Name"]
    return template


def create(path, name):
    # Local values: a bus per stack; the table deletable (moto is thrown away anyway).
    parameters = {"EventBusName": f"{name}-bus", "TableDeletionProtection": "false"}
    cfn_template = moto_quirks(resolve_conditions(translate(path), parameters), parameters)
    s3 = boto3.client("s3")
    try:
        s3.create_bucket(Bucket=CODE_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
    s3.put_object(Bucket=CODE_BUCKET, Key=CODE_KEY, Body=buf.getvalue())
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    resources = [
        r for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        for r in page["StackResourceSummaries"] if r.get("LogicalResourceId")
    ]
    created = {r["LogicalResourceId"] for r in resources}
    # moto's CloudFormation skips AWS::SecretsManager::Secret: stand in with the template's own
    # properties (as CloudFormation would create it: the placeholder SecretString), named so the
    # test can tell it apart.
    stand_ins = {}
    sm = boto3.client("secretsmanager")
    for logical, r in cfn_template["Resources"].items():
        if logical in created or r["Type"] != "AWS::SecretsManager::Secret":
            continue
        props = r.get("Properties", {})
        arn = sm.create_secret(
            Name=f"{name}-{logical}",
            Description=props.get("Description", ""),
            SecretString=props["SecretString"],
        )["ARN"]
        stand_ins[logical] = {"type": r["Type"], "physical_id": arn}
    iam = boto3.client("iam")
    roles = {}
    for r in resources:
        if r["ResourceType"] != "AWS::IAM::Role":
            continue
        role = r["PhysicalResourceId"]
        inline = {}
        for p in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"]
            # moto keeps a CloudFormation-made document as the Python repr of the dict.
            inline[p] = ast.literal_eval(doc) if isinstance(doc, str) else doc
        managed = [a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
        roles[r["LogicalResourceId"]] = {"name": role, "inline": inline, "managed": managed}
    out = {
        "roles": roles,
        "stand_ins": stand_ins,
        "template": cfn_template,
        "stack_status": stack["StackStatus"],
        "outputs": {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])},
        "resources": {
            r["LogicalResourceId"]: {"type": r["ResourceType"], "physical_id": r.get("PhysicalResourceId")}
            for r in resources
        },
        "translated": {k: v["Type"] for k, v in cfn_template["Resources"].items()},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "translate":
        json.dump(translate(sys.argv[2]), sys.stdout, indent=1)
    else:
        create(sys.argv[2], sys.argv[3])
