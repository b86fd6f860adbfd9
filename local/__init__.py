"""The embedded local stack: template.yaml run on one machine, with moto as AWS.

It knows the template, not the package: handlers are loaded from each function's
CodeUri and Handler, the way Lambda loads them. Nothing in ``nudge`` imports this.
"""
