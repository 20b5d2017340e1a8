hookserver::main!(port = 8080);
