import NIOCore
import NIOPosix

extension MQTTTransport {
    /// A Unix-domain socket (a broker's `listener 0 /path/to/socket`; mosquitto_pub's `--unix`).
    /// The host and port of the configuration are ignored.
    public static func unixSocket(path: String) -> MQTTTransport {
        MQTTTransport { _, _, eventLoop, handler in
            ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in channel.pipeline.addHandler(handler) }
                .connect(unixDomainSocketPath: path)
        }
    }
}
