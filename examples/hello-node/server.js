// hello-node answers every request on $PORT, as Strata's web processes must.
const http = require("http");

const port = Number(process.env.PORT || 8080);
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
  res.end(`hello from node ${process.version} (${process.env.NODE_ENV})\n`);
});
server.listen(port, () => console.log(`listening on ${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
