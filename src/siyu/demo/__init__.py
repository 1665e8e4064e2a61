"""The demo brand (山隅咖啡 Shanyu Coffee) and the large synthetic customer pool.

A plain package, not a Django app: `brand.load_demo` builds the demo workspace,
`seed.seed_contacts` appends synthetic contacts at scale, `people` generates them
deterministically, `bulk` writes them with set-based inserts, `logins` keeps the demo
staff's generated passwords in SIYU_HOME/demo-login.txt."""
