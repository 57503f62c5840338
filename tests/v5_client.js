// Drives BrowserFarm's /5 with the widely used node client of the API (npm
// "browserstack"), unchanged but for where it points. Prints one JSON line per step.
const BrowserStack = require(process.env.CLIENT_DIR + "/node_modules/browserstack");

const client = BrowserStack.createClient({
  username: process.env.V5_USERNAME, password: process.env.V5_ACCESS_KEY,
  server: {host: "127.0.0.1", port: Number(process.env.PORT)}, useHttp: true,
});
client.version = 5;  // the client's newest is 4; /5 is the same surface

const call = (method, ...args) => new Promise((resolve) => {
  client[method](...args, (error, value) => resolve(error ? {error: error.message} : {value}));
});

(async () => {
  const out = (name, result) => console.log(JSON.stringify({step: name, ...result}));
  const browsers = await call("getBrowsers");
  out("getBrowsers", browsers);
  const worker = await call("createWorker", {
    os: "Linux", os_version: process.env.OS_VERSION, browser: "firefox",
    browser_version: "latest", url: process.env.PAGE + "/page/node", timeout: 120});
  out("createWorker", worker);
  const id = worker.value.id;
  out("getWorker", await call("getWorker", id));
  out("takeScreenshot", await call("takeScreenshot", id));
  out("changeUrl", await call("changeUrl", id, {url: process.env.PAGE + "/page/changed"}));
  out("getWorkers", await call("getWorkers"));
  out("getApiStatus", await call("getApiStatus"));
  out("terminateWorker", await call("terminateWorker", id));
  out("createWorkerInvalid", await call("createWorker", {os: "Linux"}));
})();
