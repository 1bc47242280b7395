import NIOCore
import NIOPosix

extension MQTTTransport {
    /// Plain TCP (`mqtt://`).
    public static let tcp = MQTTTransport { host, port, eventLoop, handler in
        ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in channel.pipeline.addHandler(handler) }
            .connect(host: host, port: port)
    }
}
