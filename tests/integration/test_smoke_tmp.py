import json
from tests.integration.conftest import Aws

def test_smoke(aws: Aws, ingest, stream, repo):
    for path in sorted((repo / "events").glob("*.json")):
        r = ingest(json.loads(path.read_text()))
        print(path.name, r["statusCode"], r["body"][:100])
    recs = stream.read()
    print(len(recs), json.dumps(recs[0], indent=1)[:3000])
    print(stream.deliver(recs))
    from nudge import bootstrap
    print(bootstrap.event_store().read_person("user-1042"))
