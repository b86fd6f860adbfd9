"""The pure core: no boto3, no I/O, no clock reads. Time is always passed in."""
