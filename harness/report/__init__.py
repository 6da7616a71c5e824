"""What people read: the terminal tables of the CLI (:mod:`.terminal`) and the procurement
report of a claim check in Markdown and HTML (:mod:`.claim_report`). The library never prints."""
