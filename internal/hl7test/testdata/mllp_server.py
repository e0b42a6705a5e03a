"""An HL7 v2 interface engine for the probes' tests: python3-hl7's
hl7.mllp asyncio server on 127.0.0.1:PORT, answering every message with
an AA or AE acknowledgment, or never answering (MODE silent).

usage: python3 mllp_server.py AA|AE|silent PORT
"""
import asyncio
import sys

import hl7
import hl7.mllp

MODE, PORT = sys.argv[1], int(sys.argv[2])


async def handle(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            if MODE == "silent":
                continue
            ack = message.create_ack(ack_code=MODE)
            if MODE == "AE":
                text = "Unknown receiving application"
                ack = hl7.parse(str(ack).rstrip("\r") + "|" + text + "\rERR|||207^Application internal error^HL70357|E||||" + text)
            writer.writemessage(ack)
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main():
    server = await hl7.mllp.start_hl7_server(handle, host="127.0.0.1", port=PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
