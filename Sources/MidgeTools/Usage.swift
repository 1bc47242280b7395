/// `--help` texts: Mosquitto's, for the options midge implements (no PSK or SOCKS yet).
enum Usage {
    static func versionLine(_ tool: ToolKind, _ version: String) -> String {
        "\(tool.displayName) version \(version) (MidgeClient).\n"
    }

    static func text(_ tool: ToolKind, version: String) -> String {
        switch tool {
        case .pub: return pub(version)
        case .sub: return sub(version)
        case .rr: return rr(version)
        }
    }

    private static let sessionExpiry = """
     -x : Set the session-expiry-interval property on the CONNECT packet. Applies to MQTT v5
          clients only. Set to 0-4294967294 to specify the session will expire in that many
          seconds after the client disconnects, or use -1, 4294967295, or ∞ for a session
          that does not expire. Defaults to -1 if -c is also given, or 0 if -c not given.

    """

    private static let cleanSession = """
     -c : disable clean session/enable persistent client mode
          When this argument is used, the broker will be instructed not to clean existing sessions
          for the same client id when the client connects, and sessions will never expire when the
          client disconnects. MQTT v5 clients can change their session expiry interval with the -x
          argument.

    """

    /// The TLS options (TLSOptionParsing.swift).
    private static let tlsOptions = """
     --cafile : path to a file containing trusted CA certificates to enable encrypted
                communication.
     --capath : path to a directory containing trusted CA certificates to enable encrypted
                communication.
     --cert : client certificate for authentication, if required by server.
     --key : client private key for authentication, if required by server.
     --ciphers : openssl compatible list of TLS ciphers to support.
     --tls-version : TLS protocol version, can be one of tlsv1.3 tlsv1.2 or tlsv1.1.
                     Defaults to tlsv1.2 (and tlsv1.3 when the broker has it).
     --insecure : do not check that the server certificate hostname matches the remote
                  hostname (the certificate chain is still checked). Do not use this option
                  in a production environment.
     --tls-use-os-certs : Load and trust OS provided CA certificates.

    """

    private static let will = """
     --will-payload : payload for the client Will, which is sent by the broker in case of
                      unexpected disconnection. If not given and will-topic is set, a zero
                      length message will be sent.
     --will-qos : QoS level for the client Will.
     --will-retain : if given, make the client Will retained.
     --will-topic : the topic on which to publish the client Will.

    """

    static func pub(_ version: String) -> String {
        """
        midge pub is a simple mqtt client that will publish a message on a single topic and exit.
        \(versionLine(.pub, version))
        Usage: midge pub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}
                         {-f file | -l | -n | -m message}
                         [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                         [-A bind_address] [--nodelay]
                         [-i id] [-I id_prefix]
                         [-d] [--quiet]
                         [{--cafile file | --capath dir} [--cert file] [--key file] [--ciphers ciphers] [--insecure]
                          [--tls-version version] [--tls-use-os-certs]]
                         [-M max_inflight]
                         [-u username [-P password]]
                         [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                         [--property command identifier value]
                         [-D command identifier value]
               midge pub --help

         -A : bind the outgoing socket to this host/ip address. Use to control which interface
              the client communicates over.
         -d : enable debug messages.
        \(cleanSession) -D : Define MQTT v5 properties. See the documentation for more details.
         -f : send the contents of a file as the message.
         -h : mqtt host to connect to. Defaults to localhost.
         -i : id to use for this client. Defaults to an id given by the broker.
         -I : define the client id as id_prefix appended with the process id. Useful for when the
              broker is using the clientid_prefixes option.
         -k : keep alive in seconds for this client. Defaults to 60.
         -L : specify user, password, hostname, port and topic as a URL in the form:
              mqtt://[username[:password]@]host[:port]/topic
              or ws(s)://[username[:password]@]host[:port][/path] for MQTT over WebSocket (Midge only;
              the path is the HTTP path, give topics with -t)
         -l : read messages from stdin, sending a separate message for each line.
         -m : message payload to send.
         -M : the maximum inflight messages for QoS 1/2..
         -n : send a null (zero length) message.
         -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
         -P : provide a password
         -q : quality of service level to use for all messages. Defaults to 0.
         -r : message should be retained.
         -s : read message from stdin, sending the entire input as a message.
         -t : mqtt topic to publish to.
         -u : provide a username
         -V : specify the version of the MQTT protocol to use when connecting.
              Can be mqttv5, mqttv311 or mqttv31. Defaults to mqttv311.
        \(sessionExpiry) --help : display this message.
         --nodelay : disable Nagle's algorithm, to reduce socket sending latency at the possible
                     expense of more packets being sent.
         --quiet : don't print error messages.
         --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.
         --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
         --unix : connect to a broker through a unix domain socket instead of a TCP socket,
                  e.g. /tmp/mosquitto.sock
        \(tlsOptions)\(will)
        See https://mosquitto.org/ for the options, which midge pub shares with mosquitto_pub.


        """
    }

    static func sub(_ version: String) -> String {
        """
        midge sub is a simple mqtt client that will subscribe to a set of topics and print all messages it receives.
        \(versionLine(.sub, version))
        Usage: midge sub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                         [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                         [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                         [-F format]
                         [-W timeout_secs]
                         [-A bind_address] [--nodelay]
                         [-i id] [-I id_prefix]
                         [-d] [-N] [--quiet] [-v]
                         [{--cafile file | --capath dir} [--cert file] [--key file] [--ciphers ciphers] [--insecure]
                          [--tls-version version] [--tls-use-os-certs]]
                         [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                         [-D command identifier value]
               midge sub --help

         -A : bind the outgoing socket to this host/ip address. Use to control which interface
              the client communicates over.
        \(cleanSession) -C : disconnect and exit after receiving the 'msg_count' messages.
         -d : enable debug messages.
         -D : Define MQTT v5 properties. See the documentation for more details.
         -E : Exit once all subscriptions have been acknowledged by the broker.
         -F : output format.
         -h : mqtt host to connect to. Defaults to localhost.
         -i : id to use for this client. Defaults to an id given by the broker.
         -I : define the client id as id_prefix appended with the process id. Useful for when the
              broker is using the clientid_prefixes option.
         -k : keep alive in seconds for this client. Defaults to 60.
         -L : specify user, password, hostname, port and topic as a URL in the form:
              mqtt://[username[:password]@]host[:port]/topic
              or ws(s)://[username[:password]@]host[:port][/path] for MQTT over WebSocket (Midge only;
              the path is the HTTP path, give topics with -t)
         -N : do not add an end of line character when printing the payload.
         -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
         -P : provide a password
         -q : quality of service level to use for the subscription. Defaults to 0.
         -R : do not print stale messages (those with retain set).
         -t : mqtt topic to subscribe to. May be repeated multiple times.
         -T : topic string to filter out of results. May be repeated.
         -u : provide a username
         -U : unsubscribe from a topic. May be repeated.
         -v : print published messages verbosely.
         -V : specify the version of the MQTT protocol to use when connecting.
              Can be mqttv5, mqttv311 or mqttv31. Defaults to mqttv311.
         -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
        \(sessionExpiry) --help : display this message.
         --nodelay : disable Nagle's algorithm, to reduce socket sending latency at the possible
                     expense of more packets being sent.
         --pretty : print formatted output rather than minimised output when using the
                    JSON output format option.
         --quiet : don't print error messages.
         --random-filter : only print a percentage of received messages. Set to 100 to have all
                           messages printed, 50.0 to have half of the messages received on average
                           printed, and so on.
         --retained-only : only handle messages with the retained flag set, and exit when the
                           first non-retained message is received.
         --remove-retained : send a message to the server to clear any received retained messages
                             Use -T to filter out messages you do not want to be cleared.
         --unix : connect to a broker through a unix domain socket instead of a TCP socket,
                  e.g. /tmp/mosquitto.sock
        \(tlsOptions)\(will)
        -F format codes: %t topic, %p payload, %x / %X payload in hex, %l payload length, %q QoS,
        %r retain flag, %m message id, %j / %J JSON (%J: payload parsed as JSON), %I ISO 8601 time,
        %U Unix time, %P user properties, %C content type, %D correlation data, %E message expiry,
        %F payload format indicator, %R response topic, %S subscription identifier, %A topic alias,
        %% a percent sign; @X a strftime(3) code (@N nanoseconds, @@ an at sign); \\n \\t \\r \\0 \\a \\e \\v \\\\.

        See https://mosquitto.org/ for the options, which midge sub shares with mosquitto_sub.


        """
    }

    static func rr(_ version: String) -> String {
        """
        midge rr is an mqtt client that can be used to publish a request message and wait for a response.
                 Defaults to MQTT v5, where the Request-Response feature will be used, but v3.1.1 can also be used
                 with v3.1.1 brokers.
        \(versionLine(.rr, version))
        Usage: midge rr {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL} -e response-topic
                        [-c] [-k keepalive] [-q qos] [-R] [-x session-expiry-interval
                        [-F format]
                        [-W timeout_secs]
                        [-A bind_address] [--nodelay]
                        [-i id] [-I id_prefix]
                        [-d] [-N] [--quiet] [-v]
                        [{--cafile file | --capath dir} [--cert file] [--key file] [--ciphers ciphers] [--insecure]
                         [--tls-version version] [--tls-use-os-certs]]
                        [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                        [-D command identifier value]
               midge rr --help

         -A : bind the outgoing socket to this host/ip address. Use to control which interface
              the client communicates over.
        \(cleanSession) -d : enable debug messages.
         -D : Define MQTT v5 properties. See the documentation for more details.
         -e : Response topic. The client will subscribe to this topic to wait for a response.
         -F : output format.
         -h : mqtt host to connect to. Defaults to localhost.
         -i : id to use for this client. Defaults to an id given by the broker.
         -k : keep alive in seconds for this client. Defaults to 60.
         -L : specify user, password, hostname, port and topic as a URL in the form:
              mqtt://[username[:password]@]host[:port]/topic
              or ws(s)://[username[:password]@]host[:port][/path] for MQTT over WebSocket (Midge only;
              the path is the HTTP path, give topics with -t)
         -N : do not add an end of line character when printing the payload.
         -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
         -P : provide a password
         -q : quality of service level to use for communications. Defaults to 0.
         -R : do not print stale messages (those with retain set).
         -t : topic where the request message will be sent.
         -u : provide a username
         -v : print received messages verbosely.
         -V : specify the version of the MQTT protocol to use when connecting.
              Defaults to 5.
         -W : Specifies a timeout in seconds how long to wait for a response.
        \(sessionExpiry) --help : display this message.
         --nodelay : disable Nagle's algorithm, to reduce socket sending latency at the possible
                     expense of more packets being sent.
         --pretty : print formatted output rather than minimised output when using the
                    JSON output format option.
         --quiet : don't print error messages.
         --unix : connect to a broker through a unix domain socket instead of a TCP socket,
                  e.g. /tmp/mosquitto.sock
        \(tlsOptions)\(will)
        See https://mosquitto.org/ for the options, which midge rr shares with mosquitto_rr.


        """
    }
}
