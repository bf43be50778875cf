import { createHash } from "node:crypto";
import type { AttachmentRef, AttachmentUpload } from "../model/email-message.js";
import { ApiError } from "./errors.js";
import { containsControl, rejectUnsafeCharacters } from "./header-rules.js";
import { quoteInput } from "./quote.js";

export interface AttachmentPolicy {
  /** Largest total of decoded attachment bytes in one message (MAILROOM_MAX_MESSAGE_BYTES). */
  maxMessageBytes: number;
  /** Extensions refused by file name or detected content (MAILROOM_BLOCKED_ATTACHMENTS). */
  blockedExtensions: readonly string[];
}

/** An attachment ready to store: its reference in the message and its bytes. */
export interface CheckedAttachment {
  ref: AttachmentRef;
  content: Buffer;
}

const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const CONTENT_ID = /^[\u0021-\u003b\u003d\u003f-\u007e]{1,255}$/;

/**
 * Checks a message's attachments (names, types, inline ids, total size, dangerous content) and
 * hashes them. A file's type is judged by its name and by its bytes: a Windows executable named
 * `invoice.pdf` is refused as surely as `invoice.exe`.
 */
export async function checkAttachments(
  uploads: readonly AttachmentUpload[],
  policy: AttachmentPolicy,
): Promise<CheckedAttachment[]> {
  let total = 0;
  for (const upload of uploads) total += upload.content.length;
  if (total > policy.maxMessageBytes) {
    throw new ApiError(
      "MessageTooLarge",
      `The attachments add up to ${total} bytes; a message may carry at most ${policy.maxMessageBytes} (MAILROOM_MAX_MESSAGE_BYTES).`,
    );
  }
  const blocked = new Set(policy.blockedExtensions);
  const contentIds = new Set<string>();
  const checked: CheckedAttachment[] = [];
  for (const [index, upload] of uploads.entries()) {
    const label = `Attachment ${index} (${quoteInput(upload.filename)})`;
    // 255 as for JSON's Filename: a multipart file name is otherwise bounded only by the body.
    if (upload.filename === "" || upload.filename.length > 255 || containsControl(upload.filename)) {
      throw new ApiError(
        "InvalidAttachment",
        `Attachment ${index} needs a file name of 1 to 255 characters without line breaks or control characters.`,
      );
    }
    rejectUnsafeCharacters(`The file name of attachment ${index}`, upload.filename);
    const contentType = upload.contentType.toLowerCase();
    if (!CONTENT_TYPE.test(contentType)) {
      throw new ApiError(
        "InvalidAttachment",
        `${label} has an invalid ContentType ${quoteInput(upload.contentType)}: use type/subtype.`,
      );
    }
    if (upload.contentId !== null) {
      if (!CONTENT_ID.test(upload.contentId)) {
        throw new ApiError(
          "InvalidAttachment",
          `${label} has an invalid ContentId: use printable ASCII without spaces or angle brackets.`,
        );
      }
      if (contentIds.has(upload.contentId)) {
        throw new ApiError(
          "InvalidAttachment",
          `${label} repeats ContentId ${quoteInput(upload.contentId)}.`,
        );
      }
      contentIds.add(upload.contentId);
    }
    await refuseDangerous(upload, label, blocked);
    checked.push({
      ref: {
        filename: upload.filename,
        content_type: contentType,
        size: upload.content.length,
        content_id: upload.contentId,
        sha256: createHash("sha256").update(upload.content).digest("hex"),
      },
      content: upload.content,
    });
  }
  return checked;
}

let fileType: Promise<typeof import("file-type")> | undefined;

async function refuseDangerous(upload: AttachmentUpload, label: string, blocked: ReadonlySet<string>) {
  if (blocked.size === 0) return;
  const dot = upload.filename.lastIndexOf(".");
  const named = dot >= 0 ? upload.filename.slice(dot + 1).toLowerCase() : "";
  // Loaded at the first attachment: file-type's detectors add about 10 MB to a process.
  fileType ??= import("file-type");
  const detected = await (await fileType).fileTypeFromBuffer(upload.content);
  const found = [named, detected?.ext ?? ""].find((ext) => ext !== "" && blocked.has(ext));
  // file-type calls every Windows PE file "exe" (DLLs, screen savers too) and ELF/Mach-O binaries by name.
  const executable = detected && ["exe", "elf", "macho"].includes(detected.ext) && blocked.has("exe");
  if (found !== undefined || executable) {
    const what = found === named ? `its name ends in .${named}` : `its content is a ${detected?.ext} file`;
    throw new ApiError(
      "AttachmentTypeRefused",
      `${label} is refused because ${what}, a type mail clients run when opened. Send it zipped or as a link; an operator can change MAILROOM_BLOCKED_ATTACHMENTS.`,
    );
  }
}
