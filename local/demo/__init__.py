"""`smartgrid demo`: a simulated fleet of grid sensors and smart meters as the platform's workload.

profiles (BDEW load shapes, PV), fleet (devices and their readings), anomalies and malformed
(what is injected), messages (CloudEvents and Kafka records), senders (HTTP, Kafka), tally and
expected_alerts (what was sent, and the alerts it should raise), generation (the PV meters
registered), observe (what the platform stored, raised and notified), summary, workload and
runner (`demo`).
"""
